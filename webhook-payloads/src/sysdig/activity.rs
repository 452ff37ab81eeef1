//! Activity audit events: `command`, `connection`, `fileaccess` and `kubernetes`.
//!
//! Real forwarded events often carry only the envelope (`id`, `agentId`, `containerId`, `type`,
//! `timestamp`, `labels`), so every type-specific field is optional.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use super::base::sysdig_event;
use crate::object::json_object;

sysdig_event! {
    /// An activity audit `command` event: a command run in a container or on a host.
    pub struct CommandEvent {
        /// `cmdline`.
        cmdline "cmdline": Option<Cow<'a, str>> [borrow],
        /// `comm`: the process name.
        comm "comm": Option<Cow<'a, str>> [borrow],
        /// `pcomm`: the parent process name.
        pcomm "pcomm": Option<Cow<'a, str>> [borrow],
        /// `cwd`.
        cwd "cwd": Option<Cow<'a, str>> [borrow],
        /// `pid`.
        pid "pid": Option<u64> [lenient],
        /// `ppid`.
        ppid "ppid": Option<u64> [lenient],
        /// `uid`.
        uid "uid": Option<i64> [lenient],
        /// `username`.
        username "username": Option<Cow<'a, str>> [borrow],
        /// `tty`.
        tty "tty": Option<i64> [lenient],
        /// `loginShellId`.
        login_shell_id "loginShellId": Option<u64> [lenient],
        /// `loginShellDistance`.
        login_shell_distance "loginShellDistance": Option<i64> [lenient],
        /// `userLoginUid`.
        user_login_uid "userLoginUid": Option<i64> [lenient],
        /// `userLoginName`.
        user_login_name "userLoginName": Option<Cow<'a, str>> [borrow],
    }
}

sysdig_event! {
    /// An activity audit `connection` event: a network connection.
    pub struct ConnectionEvent {
        /// `clientIpv4Dot`.
        client_ipv4_dot "clientIpv4Dot": Option<Cow<'a, str>> [borrow],
        /// `clientPort`.
        client_port "clientPort": Option<u16> [lenient],
        /// `serverIpv4Dot`.
        server_ipv4_dot "serverIpv4Dot": Option<Cow<'a, str>> [borrow],
        /// `serverPort`.
        server_port "serverPort": Option<u16> [lenient],
        /// `l4protocol`, e.g. `tcp`.
        l4_protocol "l4protocol": Option<Cow<'a, str>> [borrow],
        /// `direction`: `in` or `out`.
        direction "direction": Option<Cow<'a, str>> [borrow],
        /// `dnsDomains[]`.
        dns_domains "dnsDomains": Option<Vec<Cow<'a, str>>> [borrow],
        /// `processName`.
        process_name "processName": Option<Cow<'a, str>> [borrow],
        /// `cmdline`.
        cmdline "cmdline": Option<Cow<'a, str>> [borrow],
        /// `pid`.
        pid "pid": Option<u64> [lenient],
    }
}

impl ConnectionEvent<'_> {
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
        directory "directory": Option<Cow<'a, str>> [borrow],
        /// `filename`.
        filename "filename": Option<Cow<'a, str>> [borrow],
        /// `permissions`, e.g. `w`.
        permissions "permissions": Option<Cow<'a, str>> [borrow],
        /// `pid`.
        pid "pid": Option<u64> [lenient],
        /// `comm`.
        comm "comm": Option<Cow<'a, str>> [borrow],
        /// `cmdline`.
        cmdline "cmdline": Option<Cow<'a, str>> [borrow],
    }
}

sysdig_event! {
    /// An activity audit `kubernetes` event: a request to the Kubernetes API (e.g. `kubectl exec`).
    pub struct KubernetesEvent {
        /// `resource`, e.g. `pods`.
        resource "resource": Option<Cow<'a, str>> [borrow],
        /// `subResource`, e.g. `exec`.
        sub_resource "subResource": Option<Cow<'a, str>> [borrow],
        /// `namespace`.
        namespace "namespace": Option<Cow<'a, str>> [borrow],
        /// `user`.
        user "user": Option<KubernetesUser>,
        /// `userAgent`.
        user_agent "userAgent": Option<Cow<'a, str>> [borrow],
        /// `args`.
        args "args": Option<KubernetesArgs>,
        /// `hostname`.
        hostname "hostname": Option<Cow<'a, str>> [borrow],
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
