//! One-line human summaries of Sysdig events, for logs, terminals and examples.

use super::SysdigEvent;

fn join<'a>(parts: impl IntoIterator<Item = Option<&'a str>>, sep: &str) -> String {
    parts
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(sep)
}

impl SysdigEvent<'_> {
    /// A one-line human summary: `[severity] ` (when the event has one) then the facts that
    /// identify the event for its type: rule and output for policy events, command line and
    /// host for `command`, endpoints for `connection`, file and permissions for `fileaccess`,
    /// resource and namespace for `kubernetes`, user and request for `audittrail`.
    ///
    /// ```
    /// use webhook_payloads::sysdig::SysdigEvent;
    /// let ev = SysdigEvent::from_slice(br#"{"id":"a","type":"policy","timestamp":1,"severity":7,
    ///     "name":"Runtime Activity","content":{"ruleName":"User Management Event Detected",
    ///     "output":"userdel launched"}}"#)?;
    /// assert_eq!(ev.summary(), "[info] User Management Event Detected: userdel launched");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn summary(&self) -> String {
        let ev = self;
        let severity = ev.severity().map(|s| format!("[{s:?}] ").to_lowercase());
        let text = match ev {
            SysdigEvent::Policy(p) => {
                let output = p.content.as_ref().and_then(|c| c.output.as_deref());
                let rule = p.rule_name().or(p.name.as_deref());
                match (rule, output) {
                    (Some(r), Some(o)) => format!("{r}: {o}"),
                    (r, o) => join([r, o], ""),
                }
            }
            SysdigEvent::LegacyPolicy(p) => {
                join([p.name.as_deref(), p.description.as_deref()], ": ")
            }
            SysdigEvent::Command(c) => {
                let host = c.label("host.hostName");
                let cmd = c.cmdline.as_deref().or(c.comm.as_deref());
                match (cmd, host) {
                    (Some(cmd), Some(h)) => format!("{cmd} on {h}"),
                    (cmd, h) => join([cmd, h], ""),
                }
            }
            SysdigEvent::Connection(c) => {
                let ends = match (
                    c.client_ipv4_dot.as_deref(),
                    c.client_port,
                    c.server_ipv4_dot.as_deref(),
                    c.server_port,
                ) {
                    (Some(ci), Some(cp), Some(si), Some(sp)) => {
                        Some(format!("{ci}:{cp} → {si}:{sp}"))
                    }
                    _ => None,
                };
                join(
                    [
                        c.l4_protocol.as_deref(),
                        ends.as_deref(),
                        c.process_name.as_deref(),
                        c.label("host.hostName"),
                    ],
                    " ",
                )
            }
            SysdigEvent::FileAccess(f) => {
                let what = join(
                    [
                        f.comm.as_deref(),
                        f.permissions.as_deref(),
                        f.directory.as_deref(),
                        f.filename.as_deref(),
                    ],
                    " ",
                );
                let place = join(
                    [f.label("kubernetes.pod.name"), f.label("host.hostName")],
                    " on ",
                );
                join([Some(what.as_str()), Some(place.as_str())], " in ")
            }
            SysdigEvent::Kubernetes(k) => join(
                [
                    k.resource.as_deref(),
                    k.sub_resource.as_deref(),
                    k.namespace
                        .as_deref()
                        .or(k.label("kubernetes.namespace.name")),
                    k.name.as_deref().or(k.label("kubernetes.pod.name")),
                    k.hostname.as_deref().or(k.label("host.hostName")),
                ],
                " ",
            ),
            SysdigEvent::AuditTrail(a) => {
                let c = a.content.as_ref();
                join(
                    [
                        c.and_then(|c| c.username.as_deref()),
                        c.and_then(|c| c.request_method.as_deref()),
                        c.and_then(|c| c.request_uri.as_deref()),
                    ],
                    " ",
                )
            }
            SysdigEvent::Benchmark(b) => join([b.name.as_deref(), b.description.as_deref()], ": "),
            SysdigEvent::HostScanning(h) => {
                join([h.name.as_deref(), h.description.as_deref()], ": ")
            }
            SysdigEvent::Unknown(v) => join(
                ["name", "description", "message"]
                    .iter()
                    .map(|k| v.get(*k).and_then(serde_json::Value::as_str)),
                ": ",
            ),
        };
        let text = if text.is_empty() {
            "(no details)".to_owned()
        } else {
            text
        };
        format!("{}{text}", severity.unwrap_or_default())
    }
}
