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
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("0.0.0")
        .trim()
        .to_owned();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (6, 2) {
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
