//! Probe table (placeholder until the framed transport lands).
