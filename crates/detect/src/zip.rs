//! A ZIP reader for attachments, written for hostile input: it lists members from the central
//! directory (falling back to local headers when the archive is truncated), inflates only
//! stored and deflated members, and never expands more than the caller's budget allows.
//!
//! A general-purpose archive library would bring encryption, a dozen codecs and writing; a mail
//! sensor needs names, sizes and hashes, and needs to stop early on ZIP bombs.

use std::borrow::Cow;

/// What a member's content turned out to be.
#[derive(Debug)]
pub(crate) enum Content<'a> {
    /// The member's bytes, fully expanded.
    Data(Cow<'a, [u8]>),
    /// Encrypted (password-protected): name and declared size known, content not.
    Encrypted,
    /// A compression method other than stored (0) and deflate (8).
    Unsupported(u16),
    /// The declared or actual expanded size exceeds the limit or the remaining budget.
    TooLarge,
    /// The member's data is cut short or cannot be inflated.
    Damaged(&'static str),
}

/// One archive member.
#[derive(Debug)]
pub(crate) struct Member<'a> {
    /// The path inside the archive, as stored (decoded: UTF-8, else Shift_JIS, else lossy).
    pub(crate) path: String,
    /// The uncompressed size the archive declares.
    pub(crate) declared_size: u64,
    /// The content.
    pub(crate) content: Content<'a>,
}

/// Bounds for one archive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ZipLimits {
    /// Members listed at most; the rest are counted, not read.
    pub(crate) max_members: usize,
    /// Largest expanded member.
    pub(crate) max_member_bytes: u64,
}

/// What [`read`] reports beside the members.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Whether any member is encrypted.
    pub(crate) encrypted: bool,
    /// Problems found, for the observation's notes.
    pub(crate) notes: Vec<String>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Whether `data` starts like a ZIP archive.
pub(crate) fn looks_like_zip(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06")
}

struct Entry {
    flags: u16,
    method: u16,
    comp_size: u64,
    size: u64,
    name: String,
    data_start: Option<usize>,
}

/// Lists the members of `data`, calling `each` for every file member (directories skipped).
/// `budget` is the number of expanded bytes the caller still allows; it is decreased.
pub(crate) fn read<'a>(
    data: &'a [u8],
    limits: ZipLimits,
    budget: &mut u64,
    mut each: impl FnMut(Member<'a>),
) -> Listing {
    let mut listing = Listing::default();
    let entries = match central_directory(data, limits, &mut listing) {
        Some(e) => e,
        None => {
            listing
                .notes
                .push("zip: no central directory (truncated archive?); read local headers".into());
            local_headers(data, limits)
        }
    };
    for e in entries {
        if e.name.ends_with('/') {
            continue;
        }
        let content = if e.flags & 1 != 0 {
            listing.encrypted = true;
            Content::Encrypted
        } else if e.method != 0 && e.method != 8 {
            Content::Unsupported(e.method)
        } else if e.size > limits.max_member_bytes || e.size > *budget {
            Content::TooLarge
        } else {
            expand(data, &e, limits, budget)
        };
        each(Member {
            path: e.name,
            declared_size: e.size,
            content,
        });
    }
    listing
}

fn expand<'a>(data: &'a [u8], e: &Entry, limits: ZipLimits, budget: &mut u64) -> Content<'a> {
    let Some(start) = e.data_start else {
        return Content::Damaged("local header missing");
    };
    let wanted = usize::try_from(e.comp_size).unwrap_or(usize::MAX);
    let end = start.saturating_add(wanted);
    let (raw, cut) = match data.get(start..end) {
        Some(r) => (r, false),
        None => (data.get(start..).unwrap_or(&[]), true),
    };
    let cap = limits.max_member_bytes.min(*budget);
    let content = if e.method == 0 {
        if raw.len() as u64 > cap {
            return Content::TooLarge;
        }
        if cut {
            Content::Damaged("member data truncated")
        } else {
            Content::Data(Cow::Borrowed(raw))
        }
    } else {
        let cap_usize = usize::try_from(cap).unwrap_or(usize::MAX);
        match miniz_oxide::inflate::decompress_to_vec_with_limit(raw, cap_usize) {
            Ok(out) => Content::Data(Cow::Owned(out)),
            Err(err) if err.status == miniz_oxide::inflate::TINFLStatus::HasMoreOutput => {
                Content::TooLarge
            }
            Err(_) if cut => Content::Damaged("member data truncated"),
            Err(_) => Content::Damaged("deflate stream corrupt"),
        }
    };
    if let Content::Data(d) = &content {
        *budget = budget.saturating_sub(d.len() as u64);
    }
    content
}

fn decode_name(raw: &[u8], utf8_flag: bool) -> String {
    if utf8_flag {
        return String::from_utf8_lossy(raw).into_owned();
    }
    if let Ok(s) = std::str::from_utf8(raw) {
        return s.to_owned();
    }
    // Archivers on Japanese Windows write names in Shift_JIS without setting the UTF-8 flag.
    let (text, had_errors) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(raw);
    if !had_errors {
        return text.into_owned();
    }
    String::from_utf8_lossy(raw).into_owned()
}

fn central_directory(data: &[u8], limits: ZipLimits, listing: &mut Listing) -> Option<Vec<Entry>> {
    let tail_start = data.len().saturating_sub(22 + 65_535);
    let tail = data.get(tail_start..)?;
    let eocd = tail_start + memchr::memmem::rfind(tail, b"PK\x05\x06")?;
    let total = usize::from(u16_at(data, eocd + 10)?);
    let cd_offset = usize::try_from(u32_at(data, eocd + 16)?).ok()?;
    if cd_offset == 0xFFFF_FFFF {
        listing
            .notes
            .push("zip: ZIP64 archives are not read".into());
        return Some(Vec::new());
    }
    if total > limits.max_members {
        listing.notes.push(format!(
            "zip: {total} members, only the first {} read",
            limits.max_members
        ));
    }
    let mut entries = Vec::new();
    let mut at = cd_offset;
    for _ in 0..total.min(limits.max_members) {
        if data.get(at..at + 4) != Some(b"PK\x01\x02") {
            listing.notes.push("zip: central directory damaged".into());
            break;
        }
        let flags = u16_at(data, at + 8)?;
        let method = u16_at(data, at + 10)?;
        let comp_size = u64::from(u32_at(data, at + 20)?);
        let size = u64::from(u32_at(data, at + 24)?);
        let name_len = usize::from(u16_at(data, at + 28)?);
        let extra_len = usize::from(u16_at(data, at + 30)?);
        let comment_len = usize::from(u16_at(data, at + 32)?);
        let local = usize::try_from(u32_at(data, at + 42)?).ok()?;
        let name_raw = data.get(at + 46..at + 46 + name_len)?;
        let data_start = (data.get(local..local + 4) == Some(b"PK\x03\x04"))
            .then(|| {
                let n = usize::from(u16_at(data, local + 26)?);
                let x = usize::from(u16_at(data, local + 28)?);
                Some(local + 30 + n + x)
            })
            .flatten();
        entries.push(Entry {
            flags,
            method,
            comp_size,
            size,
            name: decode_name(name_raw, flags & 0x0800 != 0),
            data_start,
        });
        at += 46 + name_len + extra_len + comment_len;
    }
    Some(entries)
}

fn local_headers(data: &[u8], limits: ZipLimits) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut at = 0usize;
    while entries.len() < limits.max_members && data.get(at..at + 4) == Some(b"PK\x03\x04") {
        let (Some(flags), Some(method), Some(comp), Some(size), Some(n), Some(x)) = (
            u16_at(data, at + 6),
            u16_at(data, at + 8),
            u32_at(data, at + 18),
            u32_at(data, at + 22),
            u16_at(data, at + 26),
            u16_at(data, at + 28),
        ) else {
            break;
        };
        let name_raw = data.get(at + 30..at + 30 + usize::from(n)).unwrap_or(&[]);
        let start = at + 30 + usize::from(n) + usize::from(x);
        entries.push(Entry {
            flags,
            method,
            comp_size: u64::from(comp),
            size: u64::from(size),
            name: decode_name(name_raw, flags & 0x0800 != 0),
            data_start: Some(start),
        });
        // Sizes in a data descriptor (flag bit 3) are unknown here: stop after this member.
        if flags & 0x0008 != 0 {
            break;
        }
        at = start.saturating_add(usize::try_from(comp).unwrap_or(usize::MAX));
    }
    entries
}
