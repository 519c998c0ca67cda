//! `ipset save`: the sets iptables rules name with `-m set --match-set NAME src|dst`, so a
//! rule naming a set of addresses is evaluated on its members. Pure: no I/O.
//!
//! Only address sets are resolved (`hash:ip`, `hash:net`, `bitmap:ip`, without `nomatch`
//! exceptions); a set of any other type (ports, marks, interfaces, lists of sets) leaves
//! the rule's condition unmodelled.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::collect::{ParseError, check_size, clean};

const WHAT: &str = "ipset save";

/// One set: its type and, for an address set, its members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSet {
    /// "hash:net", "hash:ip,port", ...
    pub kind: String,
    /// Members, when every member is an address or network.
    pub members: Option<Vec<IpNet>>,
}

/// Parses `ipset save` output into sets by name.
pub fn parse(text: &str) -> Result<BTreeMap<String, IpSet>, ParseError> {
    check_size(WHAT, text)?;
    let mut sets: BTreeMap<String, IpSet> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let mut words = raw.split_whitespace();
        match words.next() {
            None => {}
            Some("create") => {
                let name = words
                    .next()
                    .ok_or_else(|| ParseError::new(WHAT, n, "create without a set name"))?;
                let kind = words
                    .next()
                    .ok_or_else(|| ParseError::new(WHAT, n, "create without a set type"))?;
                let address_set = matches!(kind, "hash:ip" | "hash:net" | "bitmap:ip");
                sets.insert(
                    clean(name),
                    IpSet {
                        kind: clean(kind),
                        members: address_set.then(Vec::new),
                    },
                );
            }
            Some("add") => {
                let name = words
                    .next()
                    .ok_or_else(|| ParseError::new(WHAT, n, "add without a set name"))?;
                let member = words
                    .next()
                    .ok_or_else(|| ParseError::new(WHAT, n, "add without a member"))?;
                let nomatch = words.any(|w| w == "nomatch");
                let set = sets.get_mut(name).ok_or_else(|| {
                    ParseError::new(WHAT, n, format!("add to undeclared set {:?}", clean(name)))
                })?;
                let net = member
                    .parse::<IpNet>()
                    .ok()
                    .or_else(|| member.parse::<std::net::IpAddr>().ok().map(IpNet::from));
                match (net, nomatch, set.members.as_mut()) {
                    (Some(net), false, Some(m)) => m.push(net),
                    // An exception or a member the model cannot read: the set as a whole is
                    // no longer a plain list of addresses.
                    _ => set.members = None,
                }
            }
            Some(other) => {
                return Err(ParseError::new(
                    WHAT,
                    n,
                    format!("unexpected line starting with {:?}", clean(other)),
                ));
            }
        }
    }
    Ok(sets)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_address_sets_and_refuses_other_kinds() {
        let text = "create block hash:net family inet hashsize 1024 maxelem 65536\n\
                    add block 203.0.113.0/24\nadd block 198.51.100.7\n\
                    create svc hash:ip,port family inet\nadd svc 10.0.0.1,tcp:80\n\
                    create ex hash:net family inet\nadd ex 10.0.0.0/8\nadd ex 10.1.0.0/16 nomatch\n";
        let sets = parse(text).unwrap();
        assert_eq!(sets["block"].members.as_ref().unwrap().len(), 2);
        assert!(sets["svc"].members.is_none());
        assert!(sets["ex"].members.is_none());
        assert!(parse("add nope 10.0.0.1\n").is_err());
        assert!(parse("flush\n").is_err());
    }
}
