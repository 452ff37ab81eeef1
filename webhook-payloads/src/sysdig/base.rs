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
            pub struct $name<'a> {
                /// `id`: the event id (32 hex characters).
                id "id": std::borrow::Cow<'a, str> [borrow],
                /// `type`: the data type (`policy`, `command`, ...).
                kind "type": std::borrow::Cow<'a, str> [borrow],
                /// `timestamp` as sent: nanoseconds since the Unix epoch, or the resolution of
                /// the agent's `timestampFormat` (exact; never via `f64`). Read the instant with
                /// [`SysdigTimestamp::nanos`]($crate::sysdig::SysdigTimestamp::nanos).
                timestamp "timestamp": $crate::sysdig::SysdigTimestamp [lenient] => $crate::sysdig::write_ns,
                /// `timestampRFC3339Nano`: the same instant as text.
                timestamp_rfc3339_nano "timestampRFC3339Nano": Option<std::borrow::Cow<'a, str>> [borrow],
                /// `originator`, e.g. `policy`.
                originator "originator": Option<std::borrow::Cow<'a, str>> [borrow],
                /// `category`, e.g. `runtime` or `remote`.
                category "category": Option<std::borrow::Cow<'a, str>> [borrow],
                /// `source`, e.g. `syscall` or `aws_cloudtrail`.
                source "source": Option<std::borrow::Cow<'a, str>> [borrow],
                /// `name`: the policy (or object) name.
                name "name": Option<std::borrow::Cow<'a, str>> [borrow],
                /// `description`.
                description "description": Option<std::borrow::Cow<'a, str>> [borrow],
                /// `severity`, 0 (highest) to 7; see [`Self::severity_level`].
                severity "severity": Option<u64> [lenient],
                /// `agentId`: absent for cloud events and agent-local forwarding.
                agent_id "agentId": Option<u64> [lenient],
                /// `containerId`.
                container_id "containerId": Option<std::borrow::Cow<'a, str>> [borrow],
                /// `machineId` (a MAC address).
                machine_id "machineId": Option<std::borrow::Cow<'a, str>> [borrow],
                /// `hostMac`.
                host_mac "hostMac": Option<std::borrow::Cow<'a, str>> [borrow],
                /// `labels`: dotted keys such as `host.hostName`, `kubernetes.pod.name`.
                labels "labels": Option<$crate::sysdig::StringMap<'a>> [borrow],
                $($body)*
            }
        }

        impl $name<'_> {
            /// The severity level of [`Self::severity`], `None` when absent or above 7.
            pub fn severity_level(&self) -> Option<$crate::sysdig::Severity> {
                self.severity.and_then($crate::sysdig::Severity::from_number)
            }

            /// The value of a label (`host.hostName`, `kubernetes.cluster.name`, ...).
            pub fn label(&self, key: &str) -> Option<&str> {
                self.labels.as_ref()?.get(key)
            }
        }
    };
}
pub(crate) use sysdig_event;
