//! A tiny record framing for structured fuzz inputs: `tag u8 | len u16 LE | len bytes`,
//! repeated. Chosen over `arbitrary` where seeds are real captured bytes, which then go
//! into a corpus file unchanged behind a 3-byte record header.

/// One record: its tag and its bytes (shorter than `len` if the input ran out).
pub(crate) struct Record<'a> {
    pub(crate) tag: u8,
    pub(crate) len: u16,
    pub(crate) body: &'a [u8],
}

/// Iterates over the records of `data`; a trailing partial header is ignored.
pub(crate) fn records(mut data: &[u8]) -> impl Iterator<Item = Record<'_>> {
    std::iter::from_fn(move || {
        let [tag, l0, l1, rest @ ..] = data else {
            return None;
        };
        let len = u16::from_le_bytes([*l0, *l1]);
        let n = usize::from(len).min(rest.len());
        let (body, tail) = rest.split_at(n);
        data = tail;
        Some(Record {
            tag: *tag,
            len,
            body,
        })
    })
}
