//! The startup check of a server: version, persistence, eviction policy.

use crate::conn::Conn;

use crate::queue::RedisQueueError;

/// Checks the server; returns warnings (persistence off, eviction that may remove the
/// queue's keys). `CONFIG` may be refused (managed services): then only the version is checked.
///
/// # Errors
/// [`RedisQueueError::Version`] below 6.2; [`RedisQueueError::Redis`] when `INFO` fails.
pub(crate) async fn server(conn: &mut Conn) -> Result<Vec<String>, RedisQueueError> {
    let info: String = redis::cmd("INFO").arg("server").query_async(conn).await?;
    let (version, supported) = version(&info);
    if !supported {
        return Err(RedisQueueError::Version(version));
    }
    let mut warnings = Vec::new();
    let get = |name: &'static str| {
        let mut c = conn.clone();
        async move {
            let v: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async(&mut c)
                .await;
            v.ok().and_then(|v| v.get(1).cloned())
        }
    };
    let aof = get("appendonly").await;
    let save = get("save").await;
    let policy = get("maxmemory-policy").await;
    if aof.as_deref() == Some("no") && save.as_deref().is_some_and(|s| s.trim().is_empty()) {
        warnings.push(
            "redis persistence is off (appendonly no, no RDB save points): a restart of redis \
             loses the queue; turn on appendonly yes"
                .to_owned(),
        );
    }
    if let Some(p) = policy
        && p != "noeviction"
        && !p.starts_with("volatile-")
    {
        warnings.push(format!(
            "redis maxmemory-policy is {p}: at the memory limit redis may evict the queue's \
             streams; use noeviction (or a volatile-* policy)"
        ));
    }
    Ok(warnings)
}

/// The `redis_version` of an `INFO server` answer, and whether it is 6.2 or later (CI runs the
/// tests on 6.2.14, 7.0.15 and 8.2.3).
fn version(info: &str) -> (String, bool) {
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("0.0.0")
        .trim()
        .to_owned();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let supported = (major, minor) >= (6, 2);
    (version, supported)
}

#[cfg(test)]
mod tests {
    use super::version;

    #[test]
    fn versions_from_6_2_on_are_supported() {
        let info = |v: &str| format!("# Server\r\nredis_version:{v}\r\nredis_mode:standalone\r\n");
        for v in [
            "6.2.0", "6.2.14", "7.0.15", "7.2.4", "7.4.1", "8.0.0", "8.2.3", "10.0.0",
        ] {
            assert_eq!(version(&info(v)), (v.to_owned(), true), "{v}");
        }
        for v in ["5.0.14", "6.0.16", "6.1.0"] {
            assert_eq!(version(&info(v)), (v.to_owned(), false), "{v}");
        }
        assert_eq!(version("# Server\r\n"), ("0.0.0".to_owned(), false));
    }
}
