//! An event as the fields of a stream entry, and back.
//!
//! Fields: `id`, `sub` (subject), `ts` (timestamp, ns), `body` (the JSON payload), and when
//! set `ten` (tenant), `pk` (partition key), `lbl` (labels, a JSON array).

use webhook_core::Event;

/// The fields of `event`, in order.
pub(crate) fn fields(event: &Event) -> Vec<(&'static str, Vec<u8>)> {
    let mut f = Vec::with_capacity(6);
    f.push(("id", event.id().as_bytes().to_vec()));
    f.push(("sub", event.subject().as_bytes().to_vec()));
    f.push(("ts", event.timestamp_nanos().to_string().into_bytes()));
    if let Some(t) = event.tenant() {
        f.push(("ten", t.as_bytes().to_vec()));
    }
    if let Some(k) = event.partition_key() {
        f.push(("pk", k.as_bytes().to_vec()));
    }
    if !event.labels().is_empty() {
        let labels: Vec<&str> = event.labels().iter().map(|l| &**l).collect();
        f.push((
            "lbl",
            serde_json::to_vec(&labels).unwrap_or_else(|_| b"[]".to_vec()),
        ));
    }
    f.push(("body", event.body().to_vec()));
    f
}

/// Appends `event`'s fields to an `XADD` (the same fields as [`fields`], without building
/// them first: one copy of each into the command).
pub(crate) fn add_args(cmd: &mut redis::Cmd, event: &Event) {
    cmd.arg("id")
        .arg(event.id())
        .arg("sub")
        .arg(event.subject());
    cmd.arg("ts").arg(event.timestamp_nanos());
    if let Some(t) = event.tenant() {
        cmd.arg("ten").arg(t);
    }
    if let Some(k) = event.partition_key() {
        cmd.arg("pk").arg(k);
    }
    if !event.labels().is_empty() {
        let labels: Vec<&str> = event.labels().iter().map(|l| &**l).collect();
        cmd.arg("lbl")
            .arg(serde_json::to_vec(&labels).unwrap_or_else(|_| b"[]".to_vec()));
    }
    cmd.arg("body").arg(event.body().as_ref());
}

/// Why an entry could not be read as an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) String);

/// The field named `name` of a flat `[name, value, ...]` list.
pub(crate) fn field<'a>(fields: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(k, _)| k == name.as_bytes())
        .map(|(_, v)| v.as_slice())
}

fn text(fields: &[(Vec<u8>, Vec<u8>)], name: &str) -> Result<Option<String>, Malformed> {
    field(fields, name)
        .map(|v| {
            String::from_utf8(v.to_vec()).map_err(|_| Malformed(format!("{name} is not UTF-8")))
        })
        .transpose()
}

/// The event held by an entry's fields.
pub(crate) fn event(fields: &[(Vec<u8>, Vec<u8>)]) -> Result<Event, Malformed> {
    let id = text(fields, "id")?.ok_or_else(|| Malformed("no id".into()))?;
    let subject = text(fields, "sub")?.ok_or_else(|| Malformed("no subject".into()))?;
    let ts = text(fields, "ts")?
        .map(|t| t.parse::<u64>())
        .transpose()
        .map_err(|_| Malformed("bad timestamp".into()))?;
    let mut b = Event::builder(id, subject);
    if let Some(ts) = ts {
        b = b.timestamp_nanos(ts);
    }
    if let Some(t) = text(fields, "ten")? {
        b = b.tenant(t);
    }
    if let Some(k) = text(fields, "pk")? {
        b = b.partition_key(k);
    }
    if let Some(l) = field(fields, "lbl") {
        let labels: Vec<String> =
            serde_json::from_slice(l).map_err(|_| Malformed("bad labels".into()))?;
        for l in labels {
            b = b.label(l);
        }
    }
    let body = field(fields, "body").ok_or_else(|| Malformed("no body".into()))?;
    b.json_bytes(bytes::Bytes::copy_from_slice(body))
        .map_err(|e| Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(f: Vec<(&'static str, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
        f.into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect()
    }

    #[test]
    fn the_command_carries_the_same_fields() {
        let e = Event::builder("evt_1", "policy")
            .tenant("acme")
            .label("a")
            .json_bytes(&br#"{"a":1}"#[..])
            .unwrap();
        let mut cmd = redis::cmd("XADD");
        add_args(&mut cmd, &e);
        let args: Vec<Vec<u8>> = cmd
            .args_iter()
            .filter_map(|a| match a {
                redis::Arg::Simple(b) => Some(b.to_vec()),
                _ => None,
            })
            .skip(1) // the command's name
            .collect();
        let expected: Vec<Vec<u8>> = fields(&e)
            .into_iter()
            .flat_map(|(k, v)| [k.as_bytes().to_vec(), v])
            .collect();
        assert_eq!(args, expected);
    }

    #[test]
    fn round_trip() {
        let e = Event::builder("evt_1", "policy")
            .tenant("acme")
            .label("a")
            .label("b")
            .partition_key("k")
            .timestamp_nanos(42)
            .json_bytes(&br#"{"a":1}"#[..])
            .unwrap();
        let back = event(&owned(fields(&e))).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn malformed_is_an_error_not_a_panic() {
        assert!(event(&[]).is_err());
        let bad = vec![
            (b"id".to_vec(), b"x".to_vec()),
            (b"sub".to_vec(), b"s".to_vec()),
            (b"body".to_vec(), b"{not json".to_vec()),
        ];
        assert!(event(&bad).is_err());
        let bad_utf8 = vec![(b"id".to_vec(), vec![0xff])];
        assert!(event(&bad_utf8).is_err());
    }
}
