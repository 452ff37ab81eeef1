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

/// A batch waiting in Redis for its retry (the value of the retry set's data hash).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parked {
    /// Attempts made.
    pub(crate) attempts: u32,
    /// When the first attempt was made, ms since the Unix epoch.
    pub(crate) first_ms: u64,
    /// When the next attempt is due, ms since the Unix epoch.
    pub(crate) due_ms: u64,
    /// The attempt log: (at ms, status, latency ms, error), oldest first.
    pub(crate) log: Vec<(u64, Option<u16>, u64, String)>,
    /// The batch's events.
    pub(crate) events: Vec<Event>,
}

/// The first bytes of a parked batch (and its format's version).
const PARKED_MAGIC: &[u8; 4] = b"WHR1";

/// A parked batch as bytes: the magic, attempts (u32), first and due (u64), the attempt log
/// (u32 length + JSON), the events (u32 count, then per event u32 field count and per field
/// u16 name length, name, u32 value length, value); integers big-endian.
pub(crate) fn park(p: &Parked) -> Vec<u8> {
    let log = serde_json::to_vec(&p.log).unwrap_or_else(|_| b"[]".to_vec());
    let mut out =
        Vec::with_capacity(64 + log.len() + p.events.iter().map(Event::len).sum::<usize>());
    out.extend_from_slice(PARKED_MAGIC);
    out.extend_from_slice(&p.attempts.to_be_bytes());
    out.extend_from_slice(&p.first_ms.to_be_bytes());
    out.extend_from_slice(&p.due_ms.to_be_bytes());
    put_u32(&mut out, log.len());
    out.extend_from_slice(&log);
    put_u32(&mut out, p.events.len());
    for e in &p.events {
        let f = fields(e);
        put_u32(&mut out, f.len());
        for (k, v) in f {
            out.extend_from_slice(&u16::try_from(k.len()).unwrap_or(0).to_be_bytes());
            out.extend_from_slice(k.as_bytes());
            put_u32(&mut out, v.len());
            out.extend_from_slice(&v);
        }
    }
    out
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

/// Reads [`park`]'s bytes back.
pub(crate) fn parked(mut b: &[u8]) -> Result<Parked, Malformed> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], Malformed> {
        if b.len() < n {
            return Err(Malformed("a parked batch is cut short".into()));
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Ok(head)
    }
    fn int<const N: usize>(b: &mut &[u8]) -> Result<[u8; N], Malformed> {
        let mut a = [0; N];
        a.copy_from_slice(take(b, N)?);
        Ok(a)
    }
    fn len(b: &mut &[u8]) -> Result<usize, Malformed> {
        usize::try_from(u32::from_be_bytes(int(b)?)).map_err(|_| Malformed("a length".into()))
    }
    if take(&mut b, 4)? != PARKED_MAGIC {
        return Err(Malformed("not a parked batch (unknown format)".into()));
    }
    let attempts = u32::from_be_bytes(int(&mut b)?);
    let first_ms = u64::from_be_bytes(int(&mut b)?);
    let due_ms = u64::from_be_bytes(int(&mut b)?);
    let n = len(&mut b)?;
    let log = serde_json::from_slice(take(&mut b, n)?)
        .map_err(|_| Malformed("a parked batch's attempt log".into()))?;
    let count = len(&mut b)?;
    // Each event takes at least 4 bytes: a count larger than what is left is a lie.
    if count > b.len() / 4 {
        return Err(Malformed("a parked batch's event count".into()));
    }
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        let nf = len(&mut b)?;
        if nf > b.len() / 6 {
            return Err(Malformed("a parked event's field count".into()));
        }
        let mut f = Vec::with_capacity(nf);
        for _ in 0..nf {
            let kl = usize::from(u16::from_be_bytes(int(&mut b)?));
            let k = take(&mut b, kl)?.to_vec();
            let vl = len(&mut b)?;
            f.push((k, take(&mut b, vl)?.to_vec()));
        }
        events.push(event(&f)?);
    }
    if !b.is_empty() {
        return Err(Malformed("bytes after a parked batch".into()));
    }
    Ok(Parked {
        attempts,
        first_ms,
        due_ms,
        log,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_batch_round_trips_and_every_cut_is_an_error() {
        let e1 = Event::builder("evt_1", "policy")
            .tenant("acme")
            .label("a")
            .json_bytes(&br#"{"a":1}"#[..])
            .unwrap();
        let e2 = Event::builder("evt_2", "policy")
            .json_bytes(&br#"[1,2]"#[..])
            .unwrap();
        let p = Parked {
            attempts: 3,
            first_ms: 1_700_000_000_000,
            due_ms: 1_700_000_060_000,
            log: vec![
                (1, Some(503), 12, "503".into()),
                (2, None, 0, "connect".into()),
            ],
            events: vec![e1, e2],
        };
        let bytes = park(&p);
        assert_eq!(parked(&bytes).unwrap(), p);
        for cut in 0..bytes.len() {
            assert!(parked(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(parked(&longer).is_err());
        let mut lie = bytes;
        // The event count claims four billion events.
        let at = 4 + 4 + 8 + 8;
        let log_len = u32::from_be_bytes(lie[at..at + 4].try_into().unwrap()) as usize;
        lie[at + 4 + log_len..at + 8 + log_len].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parked(&lie).is_err());
        assert!(parked(b"WHR2").is_err());
    }

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
