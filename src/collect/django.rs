//! Django apps behind gunicorn, read as text: the `stack-django` probe names each gunicorn
//! master (its working directory, settings module and arguments, secrets blanked on the
//! host) and prints the project's settings, views and urls files; the `stack-app-http`
//! probe prints what one GET of an unknown URL on each gunicorn port answered. rampart never
//! imports or runs the app's code: these parsers only read lines. Pure: no I/O.

use std::collections::BTreeMap;

use super::{ParseError, check_size, clean};
use crate::state::{AppProbe, ConfLine, DjangoApp, DjangoSettings, DjangoView};

const WHAT: &str = "django app";

fn conf_line(file: &str, line: usize, text: &str) -> ConfLine {
    ConfLine {
        file: file.to_string(),
        line,
        text: clean(text.trim()),
    }
}

/// `root/pkg/settings.py` → `pkg.settings`; `None` when the file is not under root.
fn module_of(root: &str, file: &str) -> Option<String> {
    let rel = file.strip_prefix(root)?.trim_start_matches('/');
    let rel = rel.strip_suffix(".py")?;
    let rel = rel.strip_suffix("/__init__").unwrap_or(rel);
    Some(rel.replace('/', "."))
}

/// A Python module name is all we accept from the host for a settings module.
fn valid_module(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= 200
        && m.split('.').all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !p.as_bytes()[0].is_ascii_digit()
        })
}

/// Ports in gunicorn's `--bind ADDR:PORT` / `-b ADDR:PORT` / `--bind=...` arguments.
fn bind_ports(args: &str) -> Vec<u16> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let mut ports = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let value = if *w == "--bind" || *w == "-b" {
            words.get(i + 1).copied()
        } else {
            w.strip_prefix("--bind=")
                .or_else(|| w.strip_prefix("-b").filter(|v| !v.is_empty()))
        };
        if let Some(p) = value
            .and_then(|v| v.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
        {
            ports.push(p);
        }
    }
    ports
}

/// One settings file.
pub fn parse_settings(file: &str, module: &str, text: &str) -> DjangoSettings {
    let mut s = DjangoSettings {
        file: file.to_string(),
        ..DjangoSettings::default()
    };
    let mut throttle_key: Option<ConfLine> = None;
    let mut throttle_class = false;
    for (i, raw) in text.lines().enumerate() {
        let code = raw.split('#').next().unwrap_or("");
        let line = code.trim();
        if line.is_empty() {
            continue;
        }
        let at_top = !code.starts_with([' ', '\t']);
        let name = line
            .split(|c: char| c == '=' || c.is_whitespace())
            .next()
            .unwrap_or("");
        if at_top && line.contains('=') && !line.contains("==") {
            match name {
                "DEBUG" => s.debug = Some(conf_line(file, i + 1, line)),
                "RATELIMIT_ENABLE" => s.ratelimit_enable = Some(conf_line(file, i + 1, line)),
                // Only that it is set: the value stays out of state whatever the probe sent.
                "SECRET_KEY" => s.secret_key_set = true,
                _ => {}
            }
        }
        if at_top && let Some(rest) = line.strip_prefix("from ") {
            let mut w = rest.split_whitespace();
            let (Some(m), Some("import"), Some("*")) = (w.next(), w.next(), w.next()) else {
                continue;
            };
            let resolved = if let Some(rel) = m.strip_prefix('.') {
                let pkg = module.rsplit_once('.').map_or("", |(p, _)| p);
                if pkg.is_empty() {
                    rel.to_string()
                } else {
                    format!("{pkg}.{rel}")
                }
            } else {
                m.to_string()
            };
            if valid_module(&resolved) {
                s.imports = Some(resolved);
            }
        }
        if line.contains("django_ratelimit") && s.ratelimit_installed.is_none() {
            s.ratelimit_installed = Some(conf_line(file, i + 1, line));
        }
        if line.contains("DEFAULT_THROTTLE_CLASSES") {
            throttle_key = Some(conf_line(file, i + 1, line));
        }
        if throttle_key.is_some() && line.contains("Throttle") {
            throttle_class = true;
        }
    }
    if throttle_class {
        s.drf_throttle = throttle_key;
    }
    s
}

/// Top-level views of one views file and what limits each.
pub fn parse_views(file: &str, text: &str) -> Vec<DjangoView> {
    let mut views: Vec<DjangoView> = Vec::new();
    let mut decorators: Vec<ConfLine> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let code = raw.split('#').next().unwrap_or("");
        let line = code.trim();
        if line.is_empty() {
            continue;
        }
        let at_top = !code.starts_with([' ', '\t']);
        if at_top {
            if line.starts_with('@') {
                decorators.push(conf_line(file, i + 1, line));
                continue;
            }
            let def = line
                .strip_prefix("def ")
                .or_else(|| line.strip_prefix("async def "))
                .or_else(|| line.strip_prefix("class "));
            if let Some(rest) = def {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && !name.starts_with('_') {
                    let limited_by = decorators
                        .iter()
                        .find(|d| d.text.contains("ratelimit"))
                        .cloned();
                    views.push(DjangoView {
                        name,
                        at: conf_line(file, i + 1, line),
                        limited_by,
                    });
                }
            }
            decorators.clear();
        } else if let Some(v) = views.last_mut()
            && v.limited_by.is_none()
            && v.at.text.starts_with("class ")
            && (line.starts_with("throttle_classes") || line.contains("ratelimit("))
        {
            // A class view with DRF throttles or a decorated method.
            v.limited_by = Some(conf_line(file, i + 1, line));
        }
    }
    views
}

/// The `stack-django` probe's output.
pub fn parse_apps(text: &str) -> Result<Vec<DjangoApp>, ParseError> {
    check_size(WHAT, text)?;
    let mut apps: Vec<DjangoApp> = Vec::new();
    let mut current: Option<usize> = None;
    let mut file: Option<(String, Vec<&str>)> = None;
    let finish = |apps: &mut Vec<DjangoApp>, cur: Option<usize>, f: Option<(String, Vec<&str>)>| {
        let (Some(i), Some((path, body))) = (cur, f) else {
            return;
        };
        let Some(app) = apps.get_mut(i) else { return };
        let text = body.join("\n");
        let base = path.rsplit('/').next().unwrap_or("");
        if base == "views.py" || path.contains("/views/") {
            app.views.extend(parse_views(&path, &text));
        } else if (base.starts_with("settings") || path.contains("/settings/"))
            && let Some(m) = module_of(&app.root, &path)
        {
            let s = parse_settings(&path, &m, &text);
            app.settings.insert(m, s);
        }
    };
    for (n, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("### gunicorn") {
            finish(&mut apps, current, file.take());
            let _ = rest;
            apps.push(DjangoApp::default());
            current = Some(apps.len() - 1);
        } else if let Some(path) = line.strip_prefix("### file ") {
            finish(&mut apps, current, file.take());
            if current.is_none() {
                return Err(ParseError::new(WHAT, n + 1, "file before any gunicorn"));
            }
            file = Some((clean(path.trim()), Vec::new()));
        } else if let Some((_, body)) = file.as_mut() {
            body.push(line);
        } else if let Some(app) = current.and_then(|i| apps.get_mut(i)) {
            if let Some(v) = line.strip_prefix("cwd=") {
                app.root = clean(v.trim()).trim_end_matches('/').to_string();
            } else if let Some(v) = line.strip_prefix("settings=") {
                let v = v.trim();
                if valid_module(v) {
                    app.settings_module = Some(v.to_string());
                }
            } else if let Some(v) = line.strip_prefix("args=") {
                app.ports.extend(bind_ports(v));
                if app.settings_module.is_none()
                    && let Some(m) = v
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("DJANGO_SETTINGS_MODULE="))
                        .filter(|m| valid_module(m))
                {
                    app.settings_module = Some(m.to_string());
                }
            }
        }
    }
    finish(&mut apps, current, file.take());
    // One app per (root, settings module, ports): workers and restarts repeat masters.
    let mut seen = BTreeMap::new();
    apps.retain(|a| {
        seen.insert(
            (a.root.clone(), a.settings_module.clone(), a.ports.clone()),
            (),
        )
        .is_none()
    });
    Ok(apps)
}

/// The `stack-app-http` probe's output: `### app PORT SCHEME STATUS debug|nodebug`.
pub fn parse_app_probes(text: &str) -> Result<Vec<AppProbe>, ParseError> {
    check_size("app http", text)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("### app ") else {
            continue;
        };
        let w: Vec<&str> = rest.split_whitespace().collect();
        let [port, scheme, status, debug] = w[..] else {
            return Err(ParseError::new(
                "app http",
                i + 1,
                format!(
                    "expected PORT SCHEME STATUS debug|nodebug, got {:?}",
                    clean(rest)
                ),
            ));
        };
        let port = port.parse().map_err(|_| {
            ParseError::new("app http", i + 1, format!("bad port {:?}", clean(port)))
        })?;
        out.push(AppProbe {
            port,
            tls: scheme == "https",
            status: status.parse().ok().filter(|s| *s != 0),
            debug_page: debug == "debug",
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn settings_chain_and_flags() {
        let base = parse_settings(
            "/a/site/settings.py",
            "site.settings",
            "SECRET_KEY = '(hidden)'\nDEBUG = False\nINSTALLED_APPS = [\n    'django_ratelimit',\n]\n\
             REST_FRAMEWORK = {\n  'DEFAULT_THROTTLE_CLASSES': [\n    'rest_framework.throttling.AnonRateThrottle',\n  ],\n}\n",
        );
        assert!(base.secret_key_set);
        assert_eq!(base.debug.unwrap().text, "DEBUG = False");
        assert_eq!(base.ratelimit_installed.unwrap().line, 4);
        assert_eq!(base.drf_throttle.unwrap().line, 7);
        let dbg = parse_settings(
            "/a/site/settings_debug.py",
            "site.settings_debug",
            "from .settings import *  # noqa\nDEBUG = True\nRATELIMIT_ENABLE = False\n",
        );
        assert_eq!(dbg.imports.as_deref(), Some("site.settings"));
        assert_eq!(dbg.ratelimit_enable.unwrap().line, 3);
        assert!(!dbg.secret_key_set);
    }

    #[test]
    fn views_know_their_decorators() {
        let v = parse_views(
            "/a/app/views.py",
            "from django_ratelimit.decorators import ratelimit\n\n\
             @ratelimit(key='ip', rate='10/m', block=True)\ndef index(request):\n    return 1\n\n\
             def health(request):\n    @ratelimit(key='ip')\n    def inner(): pass\n\n\
             class Api(APIView):\n    throttle_classes = [AnonRateThrottle]\n\ndef _helper(): pass\n",
        );
        let names: Vec<(&str, bool)> = v
            .iter()
            .map(|v| (v.name.as_str(), v.limited_by.is_some()))
            .collect();
        assert_eq!(
            names,
            vec![("index", true), ("health", false), ("Api", true)]
        );
        assert_eq!(v[0].limited_by.as_ref().unwrap().line, 3);
    }

    #[test]
    fn apps_from_probe_output() {
        let t = "### gunicorn 42\ncwd=/srv/app/\nsettings=site.settings\n\
                 args=/usr/bin/python3 -m gunicorn --bind 10.0.0.1:8000 -b=x site.wsgi\n\
                 ### file /srv/app/site/settings.py\nDEBUG = True\n\
                 ### file /srv/app/shop/views.py\ndef index(r): pass\n\
                 ### gunicorn 43\ncwd=/srv/app\nsettings=site.settings\n\
                 args=/usr/bin/python3 -m gunicorn --bind 10.0.0.1:8000 -b=x site.wsgi\n";
        let apps = parse_apps(t).unwrap();
        assert_eq!(apps.len(), 1, "a second master of the same app counts once");
        let a = &apps[0];
        assert_eq!(a.root, "/srv/app");
        assert_eq!(a.ports, vec![8000]);
        assert_eq!(
            a.effective_settings()
                .unwrap()
                .debug
                .as_ref()
                .unwrap()
                .cite(),
            "/srv/app/site/settings.py:1: DEBUG = True"
        );
        assert_eq!(a.views.len(), 1);
        assert!(parse_apps("### file /x\n").is_err());
        let bad = parse_apps("### gunicorn 1\nsettings=os.system('x')\n").unwrap();
        assert_eq!(bad[0].settings_module, None);
    }

    #[test]
    fn app_probe_lines() {
        let p = parse_app_probes("### app 8000 http 404 debug\n### app 8443 https 000 nodebug\n")
            .unwrap();
        assert_eq!(p[0].status, Some(404));
        assert!(p[0].debug_page && !p[0].tls);
        assert_eq!(p[1].status, None);
        assert!(parse_app_probes("### app x http 1 debug\n").is_err());
        assert!(parse_app_probes("### app 1 http\n").is_err());
    }
}
