//! One inbound transaction set read and translated into the calls it makes, before anything
//! is asked of the store: by ST01 (never GS01), its typed parse, the reader's errors, and the
//! pure translators. The inbox and the admin's preview both route through [`translate`], so
//! `translate` and `mapping test` show what the daemon would queue. The refusals a set can
//! meet, here or in the inbox, are [`SetRefusal`].

use std::collections::BTreeMap;

use crate::from_erp::DocumentKind;
use crate::ingram::calls::{ApiCall, TranslateError};
use crate::ingram::from_855::from_855;
use crate::ingram::from_856::{from_856, OrderView, StatusCall};
use crate::mapping::Mapping;
use crate::x12;

/// One transaction set read and translated.
pub enum SetCalls {
    /// An 855: its one PO Response call.
    Ack855 {
        ack: Box<x12::Ack855>,
        call: ApiCall,
        /// The BAK segment (the set's start when it has none).
        at: x12::Position,
    },
    /// An 856: a PO Status call per PO it names, and the views of those POs it was built from.
    Asn856 {
        asn: Box<x12::Asn856>,
        calls: Vec<StatusCall>,
        views: BTreeMap<String, OrderView>,
        /// The BSN segment (the set's start when it has none).
        at: x12::Position,
    },
    /// A 997 from the ERP: no call (the inbox records it).
    Ack997 {
        /// The ST segment.
        at: x12::Position,
    },
}

/// Why a transaction set is not processed; an inbox file then goes to `error/` with this
/// reason, and the preview reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetRefusal {
    /// The typed reader found errors (code, message, position); the first is shown.
    #[error("{}", describe(.0))]
    Invalid(Vec<x12::Diagnostic>),
    /// The translator could not build the API call.
    #[error("{}", .0.message)]
    Untranslatable(Box<x12::Diagnostic>),
    /// A PO the bridge never received, held by `inbound.unknown_po = "hold"`.
    #[error("{kind} for purchase order {po} which the bridge never received; held by inbound.unknown_po = \"hold\" ({at})")]
    UnknownPoHeld {
        kind: &'static str,
        po: String,
        at: String,
    },
    /// A 997 whose AK102 is not a group control number.
    #[error("997 ak102 '{ak102}' is not a group control number ({at})")]
    BadAk102 { ak102: String, at: String },
    /// ST01 is not one the bridge handles.
    #[error("transaction set {id} is not handled by edi-bridge (855, 856 and 997 are) ({at})")]
    Unsupported { id: String, at: String },
    /// The store could not be read.
    #[error("{0}")]
    Store(String),
}

impl SetRefusal {
    /// What the 997 says of the refused set (AK3/AK4 and AK5 codes), besides the reader's.
    pub fn diagnostics(&self) -> Vec<x12::Diagnostic> {
        match self {
            SetRefusal::Invalid(d) => d.clone(),
            SetRefusal::Untranslatable(d) => vec![(**d).clone()],
            _ => Vec::new(),
        }
    }
}

/// Reads and translates one set. `fallback_date` dates an 855 without BAK09 (GS04, or the
/// day the file arrived); `views` gives what is known of the POs a parsed 856 names
/// (ordered quantities, vendor parts, what has shipped so far).
pub fn translate(
    tx: &x12::Transaction<'_>,
    mapping: &Mapping,
    fallback_date: &str,
    views: impl FnOnce(&x12::Asn856) -> Result<BTreeMap<String, OrderView>, SetRefusal>,
) -> Result<SetCalls, SetRefusal> {
    let st = tx
        .segments
        .first()
        .map(|s| s.position())
        .unwrap_or_default();
    let head = |id: &str| {
        tx.segments
            .iter()
            .find(|s| s.is(id))
            .map(|s| s.position())
            .unwrap_or_else(|| st.clone())
    };
    match DocumentKind::of(&tx.id) {
        DocumentKind::Ack855 => {
            let (ack, diags) = x12::Ack855::parse(tx);
            first_error(&diags)?;
            let at = head("BAK");
            let call = from_855(&ack, &at, mapping, fallback_date).map_err(untranslatable)?;
            Ok(SetCalls::Ack855 {
                ack: Box::new(ack),
                call,
                at,
            })
        }
        DocumentKind::Asn856 => {
            let (asn, diags) = x12::Asn856::parse(tx);
            first_error(&diags)?;
            let at = head("BSN");
            let views = views(&asn)?;
            let calls = from_856(&asn, &at, mapping, &views).map_err(untranslatable)?;
            Ok(SetCalls::Asn856 {
                asn: Box::new(asn),
                calls,
                views,
                at,
            })
        }
        DocumentKind::Ack997 => Ok(SetCalls::Ack997 { at: st }),
        DocumentKind::Unknown(id) => Err(SetRefusal::Unsupported {
            id,
            at: st.describe(),
        }),
    }
}

/// The first diagnostic of a refusal, as the reason shows it.
pub fn describe(diags: &[x12::Diagnostic]) -> String {
    diags
        .first()
        .map(|d| {
            format!(
                "{}: {} ({})",
                d.code.as_str(),
                d.message,
                d.position.describe()
            )
        })
        .unwrap_or_default()
}

/// The errors among a typed reader's diagnostics, as a refusal.
pub fn first_error(diags: &[x12::Diagnostic]) -> Result<(), SetRefusal> {
    let errors: Vec<x12::Diagnostic> = diags.iter().filter(|d| d.is_error()).cloned().collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(SetRefusal::Invalid(errors))
    }
}

/// A translator's refusal as a diagnostic at its segment and element: an unreadable date is
/// AK4 code 8, any other value code 7.
fn untranslatable(e: TranslateError) -> SetRefusal {
    let code = if e.message.contains("is not a date") {
        x12::DiagnosticCode::InvalidDate
    } else {
        x12::DiagnosticCode::InvalidValue
    };
    SetRefusal::Untranslatable(Box::new(x12::Diagnostic::error(
        code,
        e.to_string(),
        (*e.position).clone(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::from_erp::{inbox, preview};

    const SAMPLE_855: &str = include_str!("../../samples/ingram-po-855.edi");

    fn document<'t>(text: &'t str, mapping: &Mapping) -> x12::Document<'t> {
        x12::read(text.as_bytes(), &inbox::read_options(mapping))
    }

    #[test]
    fn an_855_becomes_its_one_call_and_the_preview_shows_the_same() {
        let mapping = Mapping::builtin();
        let doc = document(SAMPLE_855, &mapping);
        let tx = &doc.interchanges[0].groups[0].transactions[0];
        let Ok(SetCalls::Ack855 { call, at, .. }) = translate(tx, &mapping, "20261121", |_| {
            unreachable!("an 855 asks no views")
        }) else {
            panic!("not an 855's call");
        };
        assert_eq!(call.po, "IM-PO-1001");
        assert_eq!(at.segment_id.as_deref(), Some("BAK"));
        let shown = preview::calls(SAMPLE_855.as_bytes(), &mapping, &[]).unwrap();
        assert_eq!(shown.len(), 1);
        assert_eq!(
            (shown[0].po.as_str(), &shown[0].canonical),
            (call.po.as_str(), &call.body)
        );
    }

    #[test]
    fn a_set_the_bridge_does_not_handle_is_refused_by_inbox_and_preview_alike() {
        let mapping = Mapping::builtin();
        let text = SAMPLE_855.replace("ST*855*", "ST*810*");
        let doc = document(&text, &mapping);
        let tx = &doc.interchanges[0].groups[0].transactions[0];
        let refused = translate(tx, &mapping, "", |_| Ok(BTreeMap::new())).err();
        assert!(
            matches!(&refused, Some(SetRefusal::Unsupported { id, .. }) if id == "810"),
            "{refused:?}"
        );
        let previewed = preview::calls(text.as_bytes(), &mapping, &[]).unwrap_err();
        assert_eq!(Some(previewed), refused);
    }

    #[test]
    fn an_untranslatable_date_is_ak4_code_8_at_its_element() {
        let mapping = Mapping::builtin();
        let text = SAMPLE_855.replace("*SO-77812*20261121~", "*SO-77812*2026X121~");
        let doc = document(&text, &mapping);
        let tx = &doc.interchanges[0].groups[0].transactions[0];
        let refused = translate(tx, &mapping, "", |_| Ok(BTreeMap::new())).err();
        let Some(SetRefusal::Untranslatable(d)) = &refused else {
            panic!("{refused:?}");
        };
        assert_eq!(d.code, x12::DiagnosticCode::InvalidDate, "{d:?}");
        assert_eq!(d.position.segment_id.as_deref(), Some("BAK"));
    }
}
