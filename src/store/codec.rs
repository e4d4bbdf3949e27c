//! How a record is stored: its JSON (so a dump stays readable with `zstd -D`), compressed with
//! zstd against a fixed dictionary of typical records. Every record repeats the same field
//! names and shapes, so the dictionary, not the record, carries them: a two-line PO's records
//! shrink to about a third. The first byte tells the encoding, so values written before
//! compression (plain JSON, which never starts with it) still read, and a later dictionary gets
//! a byte of its own while this one stays readable forever: `dict-v1.bin` never changes (a test
//! pins its hash).

use std::sync::Mutex;

/// First byte of a value compressed against dictionary v1, followed by the plain length
/// (u32, little-endian) and the zstd frame.
const ZSTD_V1: u8 = 0x02;
/// Values shorter than this stay plain JSON (index entries, counters): nothing to gain.
const COMPRESS_FROM: usize = 96;
/// Largest plain value a compressed one may claim (a damaged length never allocates more).
const MAX_PLAIN: usize = 64 << 20;
/// zstd's level: fast, and most of the gain is the dictionary.
const LEVEL: i32 = 3;

static DICT_V1: &[u8] = include_bytes!("dict-v1.bin");

/// zstd contexts (the dictionary loaded in each), shared by every thread: a context per thread
/// would cost a megabyte on each of the blocking pool's threads. At most [`POOLED`] are kept.
static COMPRESSORS: Mutex<Vec<zstd::bulk::Compressor<'static>>> = Mutex::new(Vec::new());
static DECOMPRESSORS: Mutex<Vec<zstd::bulk::Decompressor<'static>>> = Mutex::new(Vec::new());
/// Idle contexts kept for reuse.
const POOLED: usize = 4;

fn take<T>(pool: &Mutex<Vec<T>>) -> Option<T> {
    pool.lock().expect("zstd pool lock").pop()
}

fn give<T>(pool: &Mutex<Vec<T>>, t: T) {
    let mut p = pool.lock().expect("zstd pool lock");
    if p.len() < POOLED {
        p.push(t);
    }
}

/// Why a stored value cannot be read back as JSON bytes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    #[error("compressed value: claims {0} bytes, more than any record")]
    TooLarge(usize),
    #[error("compressed value: {0}")]
    Zstd(String),
    #[error("compressed value: cut short")]
    Short,
}

/// The stored form of a record's JSON.
pub(crate) fn encode(plain: Vec<u8>) -> Vec<u8> {
    if plain.len() < COMPRESS_FROM {
        return plain;
    }
    let mut c = take(&COMPRESSORS).unwrap_or_else(|| {
        zstd::bulk::Compressor::with_dictionary(LEVEL, DICT_V1)
            .expect("zstd accepts the built-in dictionary")
    });
    let packed = c.compress(&plain);
    give(&COMPRESSORS, c);
    match packed {
        Ok(p) if p.len() + 5 < plain.len() => {
            let mut out = Vec::with_capacity(p.len() + 5);
            out.push(ZSTD_V1);
            out.extend_from_slice(&(plain.len() as u32).to_le_bytes());
            out.extend_from_slice(&p);
            out
        }
        _ => plain,
    }
}

/// The JSON bytes of a stored value (borrowed when it is plain JSON).
pub(crate) fn decode(stored: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, CodecError> {
    let Some((&ZSTD_V1, rest)) = stored.split_first() else {
        return Ok(std::borrow::Cow::Borrowed(stored));
    };
    if rest.len() < 4 {
        return Err(CodecError::Short);
    }
    let (len, frame) = rest.split_at(4);
    let len = u32::from_le_bytes(len.try_into().expect("four bytes")) as usize;
    if len > MAX_PLAIN {
        return Err(CodecError::TooLarge(len));
    }
    let mut d = match take(&DECOMPRESSORS) {
        Some(d) => d,
        None => zstd::bulk::Decompressor::with_dictionary(DICT_V1)
            .map_err(|e| CodecError::Zstd(e.to_string()))?,
    };
    let plain = d.decompress(frame, len);
    give(&DECOMPRESSORS, d);
    let plain = plain.map_err(|e| CodecError::Zstd(e.to_string()))?;
    if plain.len() != len {
        return Err(CodecError::Short);
    }
    Ok(std::borrow::Cow::Owned(plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_never_changes() {
        use sha2::Digest;
        let hash: String = sha2::Sha256::digest(DICT_V1)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // Values in every store written since compression depend on these exact bytes. A new
        // dictionary is a new first byte beside this one, never an edit of this file.
        assert_eq!(hash, DICT_V1_SHA256, "dict-v1.bin changed");
    }

    const DICT_V1_SHA256: &str = include_str!("dict-v1.sha256");

    #[test]
    fn values_round_trip_and_old_plain_json_still_reads() {
        let json = br#"{"schema_version":1,"po_number":"IM-PO-1001","lines":[{"quantity":10,"unit_of_measure":"EA","description":"Widget 24-port managed switch"}],"history":[{"at":"2026-12-04T00:00:00Z","what":"webhook received"}]}"#.to_vec();
        let stored = encode(json.clone());
        assert_eq!(stored[0], ZSTD_V1);
        assert!(
            stored.len() < json.len() / 2,
            "{} of {}",
            stored.len(),
            json.len()
        );
        assert_eq!(decode(&stored).unwrap().as_ref(), json.as_slice());
        // Short values and values written before compression are plain JSON.
        assert_eq!(encode(b"{}".to_vec()), b"{}");
        assert_eq!(decode(&json).unwrap().as_ref(), json.as_slice());
    }

    #[test]
    fn a_damaged_value_is_an_error_not_a_panic() {
        let stored = encode(vec![b'x'; 4000]);
        assert!(matches!(decode(&stored[..3]), Err(CodecError::Short)));
        assert!(decode(&stored[..stored.len() - 2]).is_err());
        let mut huge = stored.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&huge), Err(CodecError::TooLarge(_))));
        let mut flipped = stored.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        let _ = decode(&flipped);
    }
}
