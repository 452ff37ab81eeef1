//! Activity audit events: `command`, `connection`, `fileaccess` and `kubernetes`.
//!
//! Real forwarded events often carry only the envelope (`id`, `agentId`, `containerId`, `type`,
//! `timestamp`, `labels`), so every type-specific field is optional.

use std::net::Ipv4Addr;

use super::base::sysdig_event;
use crate::object::json_object;

sysdig_event! {
    /// An activity audit `command` event: a command run in a container or on a host.
    pub struct CommandEvent {
        /// `cmdline`.
        cmdline "cmdline": Option<String>,
        /// `comm`: the process name.
        comm "comm": Option<String>,
        /// `pcomm`: the parent process name.
        pcomm "pcomm": Option<String>,
        /// `cwd`.
        cwd "cwd": Option<String>,
        /// `pid`.
        pid "pid": Option<u64> [lenient],
        /// `ppid`.
        ppid "ppid": Option<u64> [lenient],
        /// `uid`.
        uid "uid": Option<i64> [lenient],
        /// `username`.
        username "username": Option<String>,
        /// `tty`.
        tty "tty": Option<i64> [lenient],
        /// `loginShellId`.
        login_shell_id "loginShellId": Option<u64> [lenient],
        /// `loginShellDistance`.
        login_shell_distance "loginShellDistance": Option<i64> [lenient],
        /// `userLoginUid`.
        user_login_uid "userLoginUid": Option<i64> [lenient],
        /// `userLoginName`.
        user_login_name "userLoginName": Option<String>,
    }
}

sysdig_event! {
    /// An activity audit `connection` event: a network connection.
    pub struct ConnectionEvent {
        /// `clientIpv4Dot`.
        client_ipv4_dot "clientIpv4Dot": Option<String>,
        /// `clientPort`.
        client_port "clientPort": Option<u16> [lenient],
        /// `serverIpv4Dot`.
        server_ipv4_dot "serverIpv4Dot": Option<String>,
        /// `serverPort`.
        server_port "serverPort": Option<u16> [lenient],
        /// `l4protocol`, e.g. `tcp`.
        l4_protocol "l4protocol": Option<String>,
        /// `direction`: `in` or `out`.
        direction "direction": Option<String>,
        /// `dnsDomains[]`.
        dns_domains "dnsDomains": Option<Vec<String>>,
        /// `processName`.
        process_name "processName": Option<String>,
        /// `cmdline`.
        cmdline "cmdline": Option<String>,
        /// `pid`.
        pid "pid": Option<u64> [lenient],
    }
}

impl ConnectionEvent {
    /// `clientIpv4Dot` parsed, if it is a valid address.
    pub fn client_ip(&self) -> Option<Ipv4Addr> {
        self.client_ipv4_dot.as_deref()?.parse().ok()
    }

    /// `serverIpv4Dot` parsed, if it is a valid address.
    pub fn server_ip(&self) -> Option<Ipv4Addr> {
        self.server_ipv4_dot.as_deref()?.parse().ok()
    }
}

sysdig_event! {
    /// An activity audit `fileaccess` event.
    pub struct FileAccessEvent {
        /// `directory`.
        directory "directory": Option<String>,
        /// `filename`.
        filename "filename": Option<String>,
        /// `permissions`, e.g. `w`.
        permissions "permissions": Option<String>,
        /// `pid`.
        pid "pid": Option<u64> [lenient],
        /// `comm`.
        comm "comm": Option<String>,
        /// `cmdline`.
        cmdline "cmdline": Option<String>,
    }
}

sysdig_event! {
    /// An activity audit `kubernetes` event: a request to the Kubernetes API (e.g. `kubectl exec`).
    pub struct KubernetesEvent {
        /// `resource`, e.g. `pods`.
        resource "resource": Option<String>,
        /// `subResource`, e.g. `exec`.
        sub_resource "subResource": Option<String>,
        /// `namespace`.
        namespace "namespace": Option<String>,
        /// `user`.
        user "user": Option<KubernetesUser>,
        /// `userAgent`.
        user_agent "userAgent": Option<String>,
        /// `args`.
        args "args": Option<KubernetesArgs>,
        /// `hostname`.
        hostname "hostname": Option<String>,
    }
}

json_object! {
    /// The `user` of a `kubernetes` activity event.
    pub struct KubernetesUser {
        /// `username`.
        username "username": Option<String>,
        /// `groups[]`.
        groups "groups": Option<Vec<String>>,
    }
}

json_object! {
    /// The `args` of a `kubernetes` activity event.
    pub struct KubernetesArgs {
        /// `command`.
        command "command": Option<String>,
        /// `container`.
        container "container": Option<String>,
    }
}
