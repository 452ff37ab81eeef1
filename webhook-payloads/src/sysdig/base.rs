//! The fields every Sysdig event shares, declared once and spliced into each event type.

/// Declares a Sysdig event type: the common envelope fields, then the type's own.
macro_rules! sysdig_event {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($body:tt)*
        }
    ) => {
        $crate::object::json_object! {
            $(#[$meta])*
            pub struct $name {
                /// `id`: the event id (32 hex characters).
                id "id": String,
                /// `type`: the data type (`policy`, `command`, ...).
                kind "type": String,
                /// `timestamp`: nanoseconds since the Unix epoch (exact; never via `f64`).
                timestamp "timestamp": u64 [lenient] => $crate::sysdig::write_ns,
                /// `timestampRFC3339Nano`: the same instant as text.
                timestamp_rfc3339_nano "timestampRFC3339Nano": Option<String>,
                /// `originator`, e.g. `policy`.
                originator "originator": Option<String>,
                /// `category`, e.g. `runtime` or `remote`.
                category "category": Option<String>,
                /// `source`, e.g. `syscall` or `aws_cloudtrail`.
                source "source": Option<String>,
                /// `name`: the policy (or object) name.
                name "name": Option<String>,
                /// `description`.
                description "description": Option<String>,
                /// `severity`, 0 (highest) to 7; see [`Self::severity_level`].
                severity "severity": Option<u64> [lenient],
                /// `agentId`: absent for cloud events and agent-local forwarding.
                agent_id "agentId": Option<u64> [lenient],
                /// `containerId`.
                container_id "containerId": Option<String>,
                /// `machineId` (a MAC address).
                machine_id "machineId": Option<String>,
                /// `hostMac`.
                host_mac "hostMac": Option<String>,
                /// `labels`: dotted keys such as `host.hostName`, `kubernetes.pod.name`.
                labels "labels": Option<std::collections::BTreeMap<String, String>> [lenient],
                $($body)*
            }
        }

        impl $name {
            /// The severity level of [`Self::severity`], `None` when absent or above 7.
            pub fn severity_level(&self) -> Option<$crate::sysdig::Severity> {
                self.severity.and_then($crate::sysdig::Severity::from_number)
            }

            /// The value of a label (`host.hostName`, `kubernetes.cluster.name`, ...).
            pub fn label(&self, key: &str) -> Option<&str> {
                self.labels.as_ref()?.get(key).map(String::as_str)
            }
        }
    };
}
pub(crate) use sysdig_event;
