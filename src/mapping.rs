//! The admin-edited mapping (`mappings/ingram.toml`): ISA/GS identities, delimiters, version,
//! which 850 segments and qualifiers carry which webhook fields, code lists, date formats,
//! element length overrides, the names of the webhook fields Ingram does not document, and the
//! paths, field names and code translations of the Ingram PO Response / PO Status calls.
//! Pure data with lookups: every assumed name lives here (and in the shipped TOML), never in logic.
//! Validation reports every problem with file, line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::program::{Limits, Program, Runner, Sandbox};
use crate::tomlfile::{
    locate, nth_value_line, parse_toml, read_source, value_line, ConfigError, Problem,
};

/// The mapping shipped with the binary (also the default for `demo` and `translate`).
pub const DEFAULT_MAPPING: &str = include_str!("../mappings/ingram.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub interchange: InterchangeSettings,
    #[serde(default)]
    pub delimiters: DelimiterSettings,
    #[serde(default)]
    pub webhook: WebhookFields,
    #[serde(default)]
    pub po850: Po850Settings,
    #[serde(default)]
    pub code_lists: CodeLists,
    /// Element length overrides on top of the X12 dictionary's maxima.
    #[serde(default)]
    pub max_lengths: Vec<MaxLength>,
    #[serde(default)]
    pub po_response: PoResponse,
    #[serde(default)]
    pub po_status: PoStatus,
    #[serde(default)]
    pub inbound: Inbound,
    #[serde(default)]
    pub ack997: Ack997Settings,
    /// `[limits]`: time, memory and depth of every run of the programs below.
    #[serde(default)]
    pub limits: Limits,
    /// `[samples]`: the mapping's own sample inputs, run through its programs by `check` and
    /// reload (the shipped samples when unset).
    #[serde(default)]
    pub samples: Samples,
    #[serde(skip)]
    pub source: PathBuf,
    /// The jq programs above, compiled when the mapping loads.
    #[serde(skip)]
    pub programs: Programs,
}

/// The mapping's jq programs, compiled once (identity where the mapping sets none).
#[derive(Debug, Clone)]
pub struct Programs {
    /// `[webhook] program`: each element of the event's `resource` → a canonical PO.
    pub webhook: Program,
    /// `[po_response] body`: canonical PO Response body (+ `$segments`, `$po`) → request body.
    pub po_response: Program,
    /// `[po_status] body`: canonical PO Status body (+ `$segments`, `$po`) → request body.
    pub po_status: Program,
    /// `[[po850.segments]]`, in order: canonical PO (+ `$line`, `$index`) → segments.
    pub po850_segments: Vec<(SegmentPlace, Program)>,
    /// How they run: in worker processes under `[limits]` (the daemon and the admin commands),
    /// or in process (tests and benches).
    pub runner: Runner,
}

/// `[samples]`: inputs in the layout of `mapping test` (webhook `NAME.json`, `NAME.855`,
/// `NAME.856` with an optional `NAME.po.json`) that every program must run on without failing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Samples {
    /// A directory; relative to the mapping file.
    pub dir: Option<PathBuf>,
}

/// The global variables of the PO Response and PO Status programs, in the order they are given.
pub const BODY_GLOBALS: [&str; 2] = ["$segments", "$po"];

impl Default for Programs {
    fn default() -> Self {
        Programs {
            webhook: Program::identity(&[]),
            po_response: Program::identity(&BODY_GLOBALS),
            po_status: Program::identity(&BODY_GLOBALS),
            po850_segments: Vec::new(),
            runner: Runner::in_process(Limits::default()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum X12Version {
    #[serde(rename = "004010")]
    V4010,
    #[serde(rename = "005010")]
    V5010,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterchangeSettings {
    /// `004010` (default) or `005010`.
    #[serde(default = "d::version")]
    pub version: X12Version,
    /// ISA05 / ISA06: who the 850 comes from (the ERP's profile for Ingram).
    pub sender_qualifier: String,
    pub sender_id: String,
    /// ISA07 / ISA08: the ERP.
    pub receiver_qualifier: String,
    pub receiver_id: String,
    /// GS02 / GS03; default to the ISA ids.
    pub gs_sender: Option<String>,
    pub gs_receiver: Option<String>,
    /// GS08; default `004010` or `005010` per version (e.g. `004010VICS`).
    pub gs_version: Option<String>,
    /// ISA15: `P` production, `T` test.
    #[serde(default = "d::usage")]
    pub usage: String,
    /// ISA14: ask the ERP for a TA1.
    #[serde(default)]
    pub ack_requested: bool,
}

impl InterchangeSettings {
    /// The (sender, receiver) pair as the store keys its control-number counters and the
    /// GS06 → PO index: `ISA05:ISA06/ISA07:ISA08`.
    pub fn pair_key(&self) -> String {
        format!(
            "{}:{}/{}:{}",
            self.sender_qualifier, self.sender_id, self.receiver_qualifier, self.receiver_id
        )
    }
    pub fn gs_sender(&self) -> &str {
        self.gs_sender.as_deref().unwrap_or(&self.sender_id)
    }
    pub fn gs_receiver(&self) -> &str {
        self.gs_receiver.as_deref().unwrap_or(&self.receiver_id)
    }
    pub fn gs_version(&self) -> &str {
        self.gs_version.as_deref().unwrap_or(match self.version {
            X12Version::V4010 => "004010",
            X12Version::V5010 => "005010",
        })
    }
}

/// The ids an 855, 856 or 997 from the ERP carries when it answers this mapping's 850s: the
/// 850's receiver as its sender (ISA06, GS02) and the 850's sender as its receiver (ISA08,
/// GS03). Each account has its own; an inbound file is routed to the account it matches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct InboundPair {
    pub isa06: String,
    pub isa08: String,
    pub gs02: String,
    pub gs03: String,
}

impl InboundPair {
    pub fn of(i: &InterchangeSettings) -> InboundPair {
        InboundPair {
            isa06: i.receiver_id.trim().to_owned(),
            isa08: i.sender_id.trim().to_owned(),
            gs02: i.gs_receiver().trim().to_owned(),
            gs03: i.gs_sender().trim().to_owned(),
        }
    }

    /// Whether an interchange with these ISA ids answers this pair (ids compared trimmed).
    pub fn matches_isa(&self, isa06: &str, isa08: &str) -> bool {
        self.isa06 == isa06.trim() && self.isa08 == isa08.trim()
    }

    /// Whether a group with these GS ids answers this pair.
    pub fn matches_gs(&self, gs02: &str, gs03: &str) -> bool {
        self.gs02 == gs02.trim() && self.gs03 == gs03.trim()
    }

    /// Whether the GS ids tell this pair apart from another with the same ISA ids.
    pub fn gs_differs(&self) -> bool {
        self.gs02 != self.isa06 || self.gs03 != self.isa08
    }
}

/// `ISA06 X / ISA08 Y`, with `(GS02 … / GS03 …)` when the GS ids differ.
impl std::fmt::Display for InboundPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ISA06 {} / ISA08 {}", self.isa06, self.isa08)?;
        if self.gs_differs() {
            write!(f, " (GS02 {} / GS03 {})", self.gs02, self.gs03)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelimiterSettings {
    #[serde(default = "d::element")]
    pub element: String,
    #[serde(default = "d::component")]
    pub component: String,
    #[serde(default = "d::segment")]
    pub segment: String,
    /// Repetition separator (ISA11), used for 005010 only.
    #[serde(default = "d::repetition")]
    pub repetition: String,
    /// Write a newline after each segment terminator.
    #[serde(default = "d::yes")]
    pub newline: bool,
    /// With `newline`, the line break is CR LF (`\r\n`) instead of LF.
    #[serde(default)]
    pub crlf: bool,
}

impl Default for DelimiterSettings {
    fn default() -> Self {
        DelimiterSettings {
            element: d::element(),
            component: d::component(),
            segment: d::segment(),
            repetition: d::repetition(),
            newline: true,
            crlf: false,
        }
    }
}

/// Names of the webhook fields Ingram does not document (ingram-vendor-api.md §3, "assumed").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookFields {
    pub special_bid_number: String,
    pub ship_via: String,
    pub requested_delivery_date: String,
    pub notes: String,
    pub ship_to: String,
    pub bill_to: String,
    pub end_user: String,
    pub reseller: String,
    pub company_name: String,
    pub contact: String,
    pub address_line1: String,
    pub address_line2: String,
    pub address_line3: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub country_code: String,
    pub phone: String,
    pub email: String,
    pub lines: String,
    pub ingram_line_number: String,
    pub ingram_part_number: String,
    pub vendor_part_number: String,
    pub upc: String,
    pub description: String,
    pub quantity: String,
    pub unit_of_measure: String,
    pub unit_price: String,
    pub requested_ship_date: String,
    /// A jq program run on each element of the event's `resource`; it yields a canonical PO.
    pub program: Option<String>,
}

impl Default for WebhookFields {
    fn default() -> Self {
        let s = |v: &str| v.to_string();
        WebhookFields {
            special_bid_number: s("specialBidNumber"),
            ship_via: s("shipVia"),
            requested_delivery_date: s("requestedDeliveryDate"),
            notes: s("notes"),
            ship_to: s("shipToInfo"),
            bill_to: s("billToInfo"),
            end_user: s("endUserInfo"),
            reseller: s("resellerInfo"),
            company_name: s("companyName"),
            contact: s("contact"),
            address_line1: s("addressLine1"),
            address_line2: s("addressLine2"),
            address_line3: s("addressLine3"),
            city: s("city"),
            state: s("state"),
            postal_code: s("postalCode"),
            country_code: s("countryCode"),
            phone: s("phoneNumber"),
            email: s("email"),
            lines: s("lines"),
            ingram_line_number: s("ingramLineNumber"),
            ingram_part_number: s("ingramPartNumber"),
            vendor_part_number: s("vendorPartNumber"),
            upc: s("upcCode"),
            description: s("description"),
            quantity: s("quantity"),
            unit_of_measure: s("unitOfMeasure"),
            unit_price: s("unitPrice"),
            requested_ship_date: s("requestedShipDate"),
            program: None,
        }
    }
}

/// Which address object of the webhook an N1 loop carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartySource {
    ShipTo,
    BillTo,
    EndUser,
    Reseller,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyMap {
    pub source: PartySource,
    /// N101 entity code (`ST`, `BT`, `EN`, `BY`, `DU` …).
    pub entity: String,
    /// PER01 for the party's contact (phone/email); empty = no PER.
    #[serde(default = "d::contact_function")]
    pub contact_function: String,
    /// N103 identification code qualifier (`92` assigned by the buyer, `91` by the seller, `1`
    /// DUNS, `ZZ` mutually defined); set together with `id`.
    #[serde(default)]
    pub id_qualifier: String,
    /// N104: the party's code, a constant for this party (e.g. the ERP's customer or location
    /// number for Ingram's bill-to); set together with `id_qualifier`.
    #[serde(default)]
    pub id: String,
    /// Write N3/N4 (street lines, city, state, postal code, country) for this party; `false`
    /// writes only N1 (and PER, unless `contact_function` is empty).
    #[serde(default = "d::yes")]
    pub address: bool,
}

/// Where a `[[po850.segments]]` entry's segments go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentPlace {
    /// In the heading, after the notes (N9/MSG) and before the N1 loops.
    Header,
    /// In each PO1 loop, after the line's own segments (`$line`, `$index` are set).
    Line,
    /// In the summary, after CTT and AMT.
    Summary,
}

impl SegmentPlace {
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentPlace::Header => "header",
            SegmentPlace::Line => "line",
            SegmentPlace::Summary => "summary",
        }
    }
}

/// `[[po850.segments]]`: extra 850 segments from a jq expression over the canonical PO. Each
/// output of `expr` is one segment as an array of elements, ID first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraSegments {
    pub place: SegmentPlace,
    pub expr: String,
}

/// Which side of the value `[[po850.pad]]` fills.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PadSide {
    /// Fill before the value, right-justified: `1` → `001`.
    #[default]
    Left,
    /// Fill after the value, left-justified: `7HW123` → `7HW123    `.
    Right,
}

/// `[[po850.pad]]`: an 850 element written at a fixed width, as an ERP's import map with
/// fixed-width fields expects (a line number `1` → `001` in PO101, a part id space-padded to ten).
/// A non-empty value shorter than `width` is filled out; a longer one is written as it is, and an
/// empty element stays empty. The ERP's 855 echoes a padded PO101 back, and it is read without
/// the fill (`001` → `1`) before it reaches Ingram.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pad {
    /// Element reference like `PO101` (as in `[[max_lengths]]`). The PO1 product ids are by
    /// position: `PO107` is the first id's value, `PO109` the second's.
    pub element: String,
    /// At most the element's maximum length.
    pub width: usize,
    /// `"0"` (default, on the left only) or `" "`.
    #[serde(default = "d::zero")]
    pub fill: String,
    /// `"left"` (default) or `"right"`.
    #[serde(default)]
    pub side: PadSide,
}

impl Pad {
    /// `(segment, element)` of `element`, like `("PO1", 1)`.
    pub fn place(&self) -> Option<(String, usize)> {
        element_ref(&self.element)
    }

    /// The writer's form of this padding.
    pub fn padding(&self) -> Option<crate::x12::Padding> {
        let (segment, element) = self.place()?;
        Some(crate::x12::Padding {
            segment,
            element,
            width: self.width,
            fill: self.fill.bytes().next().unwrap_or(b'0'),
            left: self.side == PadSide::Left,
        })
    }
}

/// `PO101` → `("PO1", 1)`: a segment ID of 2 or 3 letters and digits and a 2-digit position.
pub fn element_ref(r: &str) -> Option<(String, usize)> {
    if !r.is_ascii() {
        return None;
    }
    let (seg, pos) = r.split_at(r.len().checked_sub(2)?);
    let ok = (2..=3).contains(&seg.len())
        && seg
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && pos.bytes().all(|b| b.is_ascii_digit());
    let n: usize = pos.parse().ok()?;
    (ok && n > 0).then(|| (seg.to_string(), n))
}

/// The global variables of `[[po850.segments]]` expressions.
pub const SEGMENT_GLOBALS: [&str; 2] = ["$line", "$index"];

/// How the 850 is built. An empty qualifier string means "do not emit that segment".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Po850Settings {
    /// BEG01 transaction set purpose.
    pub purpose: String,
    /// BEG02 PO type.
    pub po_type: String,
    /// Dates in the 850 (`time` crate format description).
    pub date_format: String,
    /// CUR01 entity; empty = no CUR.
    pub currency_entity: String,
    /// REF qualifier repeating the PO number when it exceeds 22 characters (possible only with a
    /// `max_lengths` override of BEG03: a PO number longer than BEG03 holds is refused).
    pub long_po_ref: String,
    pub reseller_order_ref: String,
    pub vendor_quote_ref: String,
    pub special_bid_ref: String,
    /// REF qualifier carrying the translated `orderType` (code list `order_type`).
    pub order_type_ref: String,
    /// DTM qualifier for the PO date.
    pub po_date_dtm: String,
    /// DTM qualifier for `requestedDeliveryDate`.
    pub requested_delivery_dtm: String,
    /// Line-level DTM qualifier for `requestedShipDate`.
    pub requested_ship_dtm: String,
    /// ITD01 terms type and ITD02 basis date code; empty type = no ITD.
    pub terms_type: String,
    pub terms_basis_date: String,
    /// ITD12 text; `{days}` is replaced by the net days.
    pub terms_description: String,
    /// TD5 from `shipVia`: TD501 routing sequence, TD502 qualifier; TD503 SCAC from the code list
    /// `carrier` when the text is listed there, else TD505 carries the text.
    pub carrier_routing_sequence: String,
    pub carrier_id_qualifier: String,
    /// N9 qualifier for the notes (MSG lines follow); empty = no N9.
    pub notes_n9_qualifier: String,
    /// PO105 basis of unit price.
    pub price_basis: String,
    /// PO104 and AMT02 with exactly this many decimals (`19.9000` for 4); unset: as few as
    /// the amount needs, at least two when it has a fraction (`19.90`, `12`). A price with
    /// more significant decimals is refused, never rounded.
    pub price_decimals: Option<u32>,
    /// PO1 product id qualifiers; empty = not sent.
    pub vendor_part_qualifier: String,
    pub ingram_part_qualifier: String,
    pub upc_qualifier: String,
    /// PID*F with the line description.
    pub line_description: bool,
    /// CTT02 hash total (sum of quantities).
    pub hash_total: bool,
    /// AMT*TT with the order total.
    pub total_amount: bool,
    /// Upper-case all free text (many legacy ERPs require it). Identifiers the ERP echoes back
    /// (PO number, line numbers, part numbers) are written exactly as received.
    pub uppercase: bool,
    /// N1 loops, in order.
    pub parties: Vec<PartyMap>,
    /// Write TD5 from `shipVia`; `false` writes no TD5 at all.
    pub td5: bool,
    /// CSH01 sales requirement code (`SC` ship complete, `N` no back order …); empty = no CSH.
    pub csh: String,
    /// Extra segments from jq expressions (the escape hatch).
    pub segments: Vec<ExtraSegments>,
    /// Elements written at a fixed width (`[[po850.pad]]`).
    pub pad: Vec<Pad>,
}

impl Default for Po850Settings {
    fn default() -> Self {
        let s = |v: &str| v.to_string();
        let party = |source, entity: &str| PartyMap {
            source,
            entity: s(entity),
            contact_function: d::contact_function(),
            id_qualifier: String::new(),
            id: String::new(),
            address: true,
        };
        Po850Settings {
            purpose: s("00"),
            po_type: s("SA"),
            date_format: s("[year][month][day]"),
            currency_entity: s("BY"),
            long_po_ref: s("PO"),
            reseller_order_ref: s("CO"),
            vendor_quote_ref: s("PR"),
            special_bid_ref: s("CT"),
            order_type_ref: s("ZZ"),
            po_date_dtm: s("004"),
            requested_delivery_dtm: s("002"),
            requested_ship_dtm: s("010"),
            terms_type: s("01"),
            terms_basis_date: s("3"),
            terms_description: s("NET {days}"),
            carrier_routing_sequence: s("B"),
            carrier_id_qualifier: s("2"),
            notes_n9_qualifier: s("L1"),
            price_basis: s("PE"),
            price_decimals: None,
            vendor_part_qualifier: s("VP"),
            ingram_part_qualifier: s("BP"),
            upc_qualifier: s("UP"),
            line_description: true,
            hash_total: true,
            total_amount: true,
            uppercase: true,
            parties: vec![
                party(PartySource::ShipTo, "ST"),
                party(PartySource::BillTo, "BT"),
                party(PartySource::EndUser, "EN"),
                party(PartySource::Reseller, "BY"),
            ],
            td5: true,
            csh: String::new(),
            segments: Vec::new(),
            pad: Vec::new(),
        }
    }
}

/// Translation tables. Keys are matched case-insensitively.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeLists {
    /// Webhook `orderType` → the REF value in the 850.
    pub order_type: BTreeMap<String, String>,
    /// Webhook `unitOfMeasure` → X12 unit code (unlisted values pass through).
    pub unit_of_measure: BTreeMap<String, String>,
    /// Webhook `shipVia` text → SCAC (TD503).
    pub carrier: BTreeMap<String, String>,
    /// SCAC → carrier name for the PO Status call.
    pub carrier_name: BTreeMap<String, String>,
    /// 855 BAK02 → PO Response `acknowledgementType`.
    pub ack_type: BTreeMap<String, String>,
    /// 855 ACK01 → PO Response `lineStatus`.
    pub line_status: BTreeMap<String, String>,
}

impl CodeLists {
    /// Looks `key` up in `table` ignoring case.
    pub fn lookup<'a>(table: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
        table
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key.trim()))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxLength {
    /// Element reference like `N102` or `PID05`.
    pub element: String,
    pub length: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoResponse {
    /// Request path under `api_base_url`; `{po}` is the Ingram PO number.
    pub path: String,
    /// Dates sent to Ingram (`time` format description).
    pub date_format: String,
    /// Canonical body field name → name sent on the wire (unlisted names are sent as is).
    pub fields: BTreeMap<String, String>,
    /// A jq program from the canonical body to the request body (`$segments`, `$po`).
    pub body: Option<String>,
}

impl Default for PoResponse {
    fn default() -> Self {
        PoResponse {
            path: "/purchaseorders/{po}/response".into(),
            date_format: d::api_date(),
            fields: BTreeMap::new(),
            body: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoStatus {
    pub path: String,
    pub date_format: String,
    pub fields: BTreeMap<String, String>,
    /// A jq program from the canonical body to the request body (`$segments`, `$po`).
    pub body: Option<String>,
    /// `orderStatus` values.
    pub shipped: String,
    pub partially_shipped: String,
}

impl Default for PoStatus {
    fn default() -> Self {
        PoStatus {
            path: "/purchaseorders/{po}/status".into(),
            date_format: d::api_date(),
            fields: BTreeMap::new(),
            body: None,
            shipped: "shipped".into(),
            partially_shipped: "partially_shipped".into(),
        }
    }
}

/// What to do with an 855/856 for a PO the bridge never received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownPo {
    /// Send it (Ingram knows the PO) and flag it in the PO log.
    #[default]
    Send,
    /// Keep it out of the queue: the file goes to `error/` with the reason.
    Hold,
}

/// Where the 856 carries what (qualifier lists are tried in order).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Inbound {
    pub unknown_po: UnknownPo,
    /// Reject files whose envelope counts or control numbers disagree (SE01, GE01, IEA01;
    /// SE02/ST02, GE02/GS06, IEA02/ISA13). Off: they are warnings, the file is processed and the
    /// group's 997 says `E` (accepted with errors).
    pub strict_envelope: bool,
    /// Tracking number sources: `REF:CN`, `MAN:CP`, `REF:2I`, `MAN:SM`.
    pub tracking: Vec<String>,
    /// Serial number sources: `REF:SE`, `REF:LS`.
    pub serial: Vec<String>,
    /// SSCC source (MAN qualifier).
    pub sscc: Vec<String>,
    /// Bill of lading REF qualifier.
    pub bill_of_lading: String,
    /// DTM qualifiers for ship date and estimated delivery.
    pub ship_date_dtm: Vec<String>,
    pub delivery_date_dtm: Vec<String>,
    /// 855 ACK04 qualifiers that mean "estimated ship date".
    pub estimated_ship_dtm: Vec<String>,
    /// Product id qualifiers read as vendor part and Ingram part.
    pub vendor_part_qualifiers: Vec<String>,
    pub ingram_part_qualifiers: Vec<String>,
    /// Date formats accepted in 855/856 (tried in order).
    pub x12_date_formats: Vec<String>,
}

impl Default for Inbound {
    fn default() -> Self {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Inbound {
            unknown_po: UnknownPo::Send,
            strict_envelope: false,
            tracking: v(&["REF:CN"]),
            serial: v(&["REF:SE"]),
            sscc: v(&["MAN:GM"]),
            bill_of_lading: "BM".into(),
            ship_date_dtm: v(&["011"]),
            delivery_date_dtm: v(&["017", "067"]),
            estimated_ship_dtm: v(&["068", "010", "011"]),
            vendor_part_qualifiers: v(&["VP", "VN"]),
            ingram_part_qualifiers: v(&["BP", "IN"]),
            x12_date_formats: v(&["[year][month][day]"]),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ack997Settings {
    /// Write a 997 into the outbox for every inbound functional group.
    pub generate: bool,
    /// The ERP answers each of our 850s with a 997 (or TA1): a PO is finished, and may leave
    /// the store, only once the ERP accepted its 850. `false` for an ERP that sends none.
    pub expect_from_erp: bool,
}

impl Default for Ack997Settings {
    fn default() -> Self {
        Ack997Settings {
            generate: true,
            expect_from_erp: true,
        }
    }
}

mod d {
    pub(super) fn version() -> super::X12Version {
        super::X12Version::V4010
    }
    pub(super) fn usage() -> String {
        "P".into()
    }
    pub(super) fn element() -> String {
        "*".into()
    }
    pub(super) fn component() -> String {
        ">".into()
    }
    pub(super) fn segment() -> String {
        "~".into()
    }
    pub(super) fn repetition() -> String {
        "^".into()
    }
    pub(super) fn yes() -> bool {
        true
    }
    pub(super) fn contact_function() -> String {
        "IC".into()
    }
    pub(super) fn zero() -> String {
        "0".into()
    }
    pub(super) fn api_date() -> String {
        "[year]-[month]-[day]".into()
    }
}

impl Mapping {
    /// Reads and validates a mapping file.
    pub fn load(path: &Path) -> Result<Mapping, ConfigError> {
        let text = read_source(path, "cannot read mapping")?;
        Self::from_str(&text, path)
    }

    /// Parses and validates mapping text; `path` names it in messages.
    pub fn from_str(text: &str, path: &Path) -> Result<Mapping, ConfigError> {
        let mut m: Mapping = parse_toml(text, path).map_err(|p| ConfigError(vec![p]))?;
        m.source = path.to_path_buf();
        let mut problems = m.validate(text);
        match m.compile_programs(text) {
            Ok(p) => {
                m.programs = p;
                m.programs.runner = Runner::in_process(m.limits);
            }
            Err(mut more) => problems.append(&mut more),
        }
        if problems.is_empty() {
            Ok(m)
        } else {
            Err(ConfigError(problems))
        }
    }

    /// Runs this mapping's programs in `sandbox`'s workers under its `[limits]`.
    pub fn run_in(&mut self, sandbox: Sandbox) {
        self.programs.runner = Runner::sandboxed(sandbox, self.limits);
    }

    /// The same mapping, its programs run in `sandbox`'s workers.
    pub fn sandboxed(mut self, sandbox: Sandbox) -> Mapping {
        self.run_in(sandbox);
        self
    }

    /// The `[samples] dir`, resolved against the mapping file's directory.
    pub fn samples_dir(&self) -> Option<PathBuf> {
        let dir = self.samples.dir.as_ref()?;
        Some(match self.source.parent() {
            Some(parent) if dir.is_relative() => parent.join(dir),
            _ => dir.clone(),
        })
    }

    /// The mapping shipped in `mappings/ingram.toml`, compiled in.
    pub fn builtin() -> Mapping {
        Self::from_str(DEFAULT_MAPPING, Path::new("mappings/ingram.toml"))
            .expect("the shipped mapping is valid (tested)")
    }

    /// Compiles the mapping's jq programs; a problem names the line in the file.
    fn compile_programs(&self, text: &str) -> Result<Programs, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut compile = |section: &str, key: &str, code: Option<&String>, globals: &[&str]| {
            let Some(code) = code else {
                return Program::identity(globals);
            };
            let place = |line: usize| {
                format!(
                    "{}:{}",
                    self.source.display(),
                    value_line(text, section, key, line).unwrap_or(line)
                )
            };
            Program::compile(code, globals)
                .map(|p| p.at(place(1)))
                .unwrap_or_else(|e| {
                    problems.push(Problem {
                        file: self.source.clone(),
                        line: value_line(text, section, key, e.line.unwrap_or(1)),
                        key: format!("{section}.{key}"),
                        message: e.message,
                    });
                    Program::identity(globals)
                })
        };
        let programs = Programs {
            webhook: compile("webhook", "program", self.webhook.program.as_ref(), &[]),
            po_response: compile(
                "po_response",
                "body",
                self.po_response.body.as_ref(),
                &BODY_GLOBALS,
            ),
            po_status: compile(
                "po_status",
                "body",
                self.po_status.body.as_ref(),
                &BODY_GLOBALS,
            ),
            po850_segments: Vec::new(),
            runner: Runner::in_process(self.limits),
        };
        let mut programs = programs;
        for (i, extra) in self.po850.segments.iter().enumerate() {
            match Program::compile(&extra.expr, &SEGMENT_GLOBALS) {
                Ok(p) => {
                    let line = nth_value_line(text, "po850.segments", i, "expr", 1);
                    let place = format!("{}:{}", self.source.display(), line.unwrap_or(1));
                    programs.po850_segments.push((extra.place, p.at(place)));
                }
                Err(e) => problems.push(Problem {
                    file: self.source.clone(),
                    line: nth_value_line(text, "po850.segments", i, "expr", e.line.unwrap_or(1)),
                    key: format!("po850.segments[{i}].expr"),
                    message: e.message,
                }),
            }
        }
        if problems.is_empty() {
            Ok(programs)
        } else {
            Err(problems)
        }
    }

    fn validate(&self, text: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |section: &str, key: &str, message: String| {
            out.push(Problem {
                file: self.source.clone(),
                line: locate(text, section, key),
                key: format!("{section}.{key}"),
                message,
            })
        };
        self.validate_interchange(&mut bad);
        self.validate_delimiters(&mut bad);
        self.validate_date_formats(&mut bad);
        self.validate_inbound(&mut bad);
        self.validate_max_lengths(&mut bad);
        self.validate_parties(&mut bad);
        self.validate_po850_codes(&mut bad);
        self.validate_pads(&mut bad);
        self.validate_limits(&mut bad);
        out
    }

    /// `[interchange]`: qualifiers, ids, the GS version and the usage indicator.
    fn validate_interchange(&self, bad: &mut impl FnMut(&str, &str, String)) {
        let i = &self.interchange;
        for (key, q) in [
            ("sender_qualifier", &i.sender_qualifier),
            ("receiver_qualifier", &i.receiver_qualifier),
        ] {
            if q.len() != 2 || !q.chars().all(|c| c.is_ascii_alphanumeric()) {
                bad(
                    "interchange",
                    key,
                    format!("'{q}' must be 2 letters or digits"),
                );
            }
        }
        for (key, id) in [("sender_id", &i.sender_id), ("receiver_id", &i.receiver_id)] {
            if id.trim().is_empty() || id.len() > 15 || !id.is_ascii() {
                bad(
                    "interchange",
                    key,
                    format!("'{id}' must be 1 to 15 ASCII characters"),
                );
            }
        }
        for (key, id) in [("gs_sender", &i.gs_sender), ("gs_receiver", &i.gs_receiver)] {
            if let Some(id) = id {
                if id.len() < 2 || id.len() > 15 || !id.is_ascii() {
                    bad(
                        "interchange",
                        key,
                        format!("'{id}' must be 2 to 15 ASCII characters"),
                    );
                }
            }
        }
        if let Some(v) = &i.gs_version {
            if v.is_empty() || v.len() > 12 {
                bad(
                    "interchange",
                    "gs_version",
                    "must be 1 to 12 characters".into(),
                );
            }
        }
        if !["P", "T", "I"].contains(&i.usage.as_str()) {
            bad(
                "interchange",
                "usage",
                format!("'{}' must be P, T or I", i.usage),
            );
        }
    }

    /// `[delimiters]`: one ASCII character each, none a letter, digit or space, all different.
    fn validate_delimiters(&self, bad: &mut impl FnMut(&str, &str, String)) {
        let dl = &self.delimiters;
        let mut chars = Vec::new();
        for (key, v) in [
            ("element", &dl.element),
            ("component", &dl.component),
            ("segment", &dl.segment),
            ("repetition", &dl.repetition),
        ] {
            let b = v.as_bytes();
            if b.len() != 1 || b[0].is_ascii_alphanumeric() || b[0] == b' ' || !b[0].is_ascii() {
                bad(
                    "delimiters",
                    key,
                    format!("'{v}' must be one ASCII character, not a letter, digit or space"),
                );
            } else {
                chars.push((key, b[0]));
            }
        }
        for (n, (key, c)) in chars.iter().enumerate() {
            if chars[..n].iter().any(|(_, other)| other == c) {
                bad(
                    "delimiters",
                    key,
                    "must differ from the other delimiters".into(),
                );
            }
        }
    }

    /// Every date format parses.
    fn validate_date_formats(&self, bad: &mut impl FnMut(&str, &str, String)) {
        for (section, key, fmt) in [
            ("po850", "date_format", &self.po850.date_format),
            ("po_response", "date_format", &self.po_response.date_format),
            ("po_status", "date_format", &self.po_status.date_format),
        ] {
            if let Err(e) = time::format_description::parse_borrowed::<2>(fmt) {
                bad(section, key, format!("invalid date format: {e}"));
            }
        }
        for fmt in &self.inbound.x12_date_formats {
            if let Err(e) = time::format_description::parse_borrowed::<2>(fmt) {
                bad(
                    "inbound",
                    "x12_date_formats",
                    format!("invalid date format '{fmt}': {e}"),
                );
            }
        }
    }

    /// The inbound API paths and the tracking and serial sources.
    fn validate_inbound(&self, bad: &mut impl FnMut(&str, &str, String)) {
        for (section, path) in [
            ("po_response", &self.po_response.path),
            ("po_status", &self.po_status.path),
        ] {
            if !path.starts_with('/') || !path.contains("{po}") {
                bad(
                    section,
                    "path",
                    format!("'{path}' must start with '/' and contain {{po}}"),
                );
            }
        }
        for src in self.inbound.tracking.iter().chain(&self.inbound.serial) {
            match src.split_once(':') {
                Some(("REF" | "MAN", q)) if !q.is_empty() => {}
                _ => bad(
                    "inbound",
                    if self.inbound.tracking.contains(src) {
                        "tracking"
                    } else {
                        "serial"
                    },
                    format!("'{src}' must look like REF:CN or MAN:CP"),
                ),
            }
        }
    }

    /// `[[max_lengths]]`: an element such as N102 and a length above 0.
    fn validate_max_lengths(&self, bad: &mut impl FnMut(&str, &str, String)) {
        for ml in &self.max_lengths {
            let ok = ml.element.len() >= 4
                && ml.element[ml.element.len() - 2..]
                    .chars()
                    .all(|c| c.is_ascii_digit())
                && ml.length > 0;
            if !ok {
                bad(
                    "max_lengths",
                    "element",
                    format!("'{}' must look like N102 with a length above 0", ml.element),
                );
            }
        }
    }

    /// `[[po850.parties]]`: each source once, an entity, and a qualifier and id that fit.
    fn validate_parties(&self, bad: &mut impl FnMut(&str, &str, String)) {
        let mut seen = Vec::new();
        for p in &self.po850.parties {
            if p.entity.is_empty() || p.entity.len() > 3 {
                bad(
                    "po850.parties",
                    "entity",
                    format!("'{}' must be 1 to 3 characters", p.entity),
                );
            }
            if seen.contains(&p.source) {
                bad(
                    "po850.parties",
                    "source",
                    format!("{:?} is mapped twice", p.source),
                );
            }
            seen.push(p.source);
            if p.id_qualifier.is_empty() != p.id.is_empty() {
                bad(
                    "po850.parties",
                    "id_qualifier",
                    format!(
                        "{} needs both id_qualifier (N103) and id (N104), or neither",
                        p.entity
                    ),
                );
            }
            if !p.id_qualifier.is_empty()
                && (p.id_qualifier.len() > 2
                    || !p.id_qualifier.chars().all(|c| c.is_ascii_alphanumeric()))
            {
                bad(
                    "po850.parties",
                    "id_qualifier",
                    format!("'{}' must be 1 or 2 letters or digits", p.id_qualifier),
                );
            }
            if p.id.len() > 80 || p.id.trim() != p.id {
                bad(
                    "po850.parties",
                    "id",
                    format!(
                        "'{}' must be at most 80 characters, without outer spaces",
                        p.id
                    ),
                );
            }
        }
    }

    /// `[po850]` price decimals and CSH code.
    fn validate_po850_codes(&self, bad: &mut impl FnMut(&str, &str, String)) {
        if self.po850.price_decimals.is_some_and(|d| d > 6) {
            bad("po850", "price_decimals", "must be 0 to 6".into());
        }
        let csh = &self.po850.csh;
        if !csh.is_empty() && (csh.len() > 2 || !csh.chars().all(|c| c.is_ascii_alphanumeric())) {
            bad(
                "po850",
                "csh",
                format!("'{csh}' must be a CSH01 code of 1 or 2 letters or digits"),
            );
        }
    }

    /// `[limits]`: each within its range.
    fn validate_limits(&self, bad: &mut impl FnMut(&str, &str, String)) {
        for (key, value, low, high) in self.limits.ranges() {
            if !(low..=high).contains(&value) {
                bad(
                    "limits",
                    key,
                    format!("{value} must be from {low} to {high}"),
                );
            }
        }
    }

    /// Each `[[po850.pad]]`: a known element, a width it holds, a fill of `0` or a space, and
    /// each element once.
    fn validate_pads(&self, bad: &mut impl FnMut(&str, &str, String)) {
        let opts = crate::x12::WriteOptions {
            version: match self.interchange.version {
                X12Version::V4010 => crate::x12::Version::V4010,
                X12Version::V5010 => crate::x12::Version::V5010,
            },
            max_lengths: self.length_overrides(),
            ..crate::x12::WriteOptions::default()
        };
        let mut seen = Vec::new();
        for p in &self.po850.pad {
            let Some((seg, n)) = p.place() else {
                bad(
                    "po850.pad",
                    "element",
                    format!("'{}' must look like PO101", p.element),
                );
                continue;
            };
            if seen.contains(&(seg.clone(), n)) {
                bad(
                    "po850.pad",
                    "element",
                    format!("{} is padded twice", p.element),
                );
            }
            let max = crate::x12::max_len(&opts, &seg, n);
            if p.width == 0 || max.is_some_and(|m| p.width > m) {
                let holds = max.map_or(String::new(), |m| format!(" ({} holds {m})", p.element));
                bad(
                    "po850.pad",
                    "width",
                    format!("{} must be from 1 to the element's length{holds}", p.width),
                );
            }
            if p.fill != "0" && p.fill != " " {
                bad(
                    "po850.pad",
                    "fill",
                    format!("'{}' must be \"0\" or \" \"", p.fill),
                );
            } else if p.fill == "0" && p.side == PadSide::Right {
                bad(
                    "po850.pad",
                    "side",
                    format!(
                        "{}: zeros go on the left only (on the right they change the value)",
                        p.element
                    ),
                );
            }
            seen.push((seg, n));
        }
    }

    /// The writer's paddings (`[[po850.pad]]`).
    pub fn paddings(&self) -> Vec<crate::x12::Padding> {
        self.po850.pad.iter().filter_map(Pad::padding).collect()
    }

    /// `value` of element `seg`/`n` as the ERP echoes it, without the fill `[[po850.pad]]`
    /// writes (unchanged when the element is not padded).
    pub fn unpad<'a>(&self, seg: &str, n: usize, value: &'a str) -> &'a str {
        match self
            .paddings()
            .iter()
            .find(|p| p.segment.eq_ignore_ascii_case(seg) && p.element == n)
        {
            Some(p) => p.strip(value),
            None => value,
        }
    }

    /// `(segment id, element position, max length)` overrides for the X12 writer.
    pub fn length_overrides(&self) -> Vec<(String, usize, usize)> {
        self.max_lengths
            .iter()
            .filter_map(|m| {
                let (seg, pos) = m.element.split_at(m.element.len().checked_sub(2)?);
                Some((seg.to_string(), pos.parse().ok()?, m.length))
            })
            .collect()
    }

    /// The wire name for a canonical PO Response / PO Status body field.
    pub fn wire_name<'a>(fields: &'a BTreeMap<String, String>, canonical: &'a str) -> &'a str {
        fields
            .get(canonical)
            .map(String::as_str)
            .unwrap_or(canonical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_mapping_is_valid() {
        let m = Mapping::builtin();
        assert_eq!(m.interchange.version, X12Version::V4010);
        assert!(!m.po850.parties.is_empty());
        assert_eq!(
            CodeLists::lookup(&m.code_lists.ack_type, "ad"),
            Some("accepted")
        );
    }

    #[test]
    fn every_problem_is_reported_with_line_and_key() {
        let text = "[interchange]\nsender_qualifier = \"ZZZ\"\nsender_id = \"A-VERY-LONG-SENDER-ID\"\nreceiver_qualifier = \"ZZ\"\nreceiver_id = \"ERP\"\n[delimiters]\nelement = \"A\"\nsegment = \"~\"\ncomponent = \"~\"\n";
        let err = Mapping::from_str(text, Path::new("m.toml")).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("m.toml:2: interchange.sender_qualifier"),
            "{shown}"
        );
        assert!(shown.contains("m.toml:3: interchange.sender_id"), "{shown}");
        assert!(shown.contains("m.toml:7: delimiters.element"), "{shown}");
        assert!(
            shown.contains("m.toml:8: delimiters.segment: must differ"),
            "{shown}"
        );
    }

    #[test]
    fn unknown_key_is_rejected_with_line() {
        let text = "[interchange]\nsender_qualifier = \"ZZ\"\nsender_id = \"A\"\nreceiver_qualifier = \"ZZ\"\nreceiver_id = \"B\"\nbogus = 1\n";
        let err = Mapping::from_str(text, Path::new("m.toml")).unwrap_err();
        assert_eq!(err.0[0].line, Some(6), "{err}");
    }

    #[test]
    fn limits_have_defaults_ranges_and_reach_the_runner_and_the_programs_know_their_line() {
        let m = Mapping::builtin();
        assert_eq!(m.limits, Limits::default());
        assert_eq!(m.programs.runner.limits(), Limits::default());
        let text = format!("{DEFAULT_MAPPING}\n[limits]\nprogram_time_ms = 250\n");
        let m = Mapping::from_str(&text, Path::new("m.toml")).unwrap();
        assert_eq!(m.programs.runner.limits().program_time_ms, 250);
        assert!(
            m.programs.runner.sandbox().is_none(),
            "in process until told"
        );
        let text = format!(
            "{DEFAULT_MAPPING}\n[limits]\nprogram_time_ms = 0\nprogram_memory_mib = 99999\n"
        );
        let shown = Mapping::from_str(&text, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        let line = text.lines().count();
        assert!(
            shown.contains(&format!(
                "m.toml:{}: limits.program_time_ms: 0 must be from 10 to 10000",
                line - 1
            )),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("m.toml:{line}: limits.program_memory_mib")),
            "{shown}"
        );
        let text = DEFAULT_MAPPING.replacen(
            "\n[po_status]\n",
            "\n[po_status]\nbody = '''\n. + {x: 1}\n'''\n",
            1,
        );
        let m = Mapping::from_str(&text, Path::new("m.toml")).unwrap();
        let line = text.lines().position(|l| l == ". + {x: 1}").unwrap() + 1;
        assert_eq!(m.programs.po_status.line(), Some(line));
        assert_eq!(m.programs.po_status.place(), format!("m.toml:{line}"));
    }
}

/// The mapping in force, shared by every worker and swappable at run time (hot reload): readers
/// take a cheap `Arc` snapshot and never hold the lock across work.
#[derive(Clone)]
pub struct SharedMapping(std::sync::Arc<std::sync::RwLock<std::sync::Arc<Mapping>>>);

impl SharedMapping {
    pub fn new(m: Mapping) -> Self {
        SharedMapping(std::sync::Arc::new(std::sync::RwLock::new(
            std::sync::Arc::new(m),
        )))
    }

    /// The mapping in force now.
    pub fn current(&self) -> std::sync::Arc<Mapping> {
        self.0.read().expect("mapping lock").clone()
    }

    /// Replaces the mapping (already validated). Its programs run where those of the mapping in
    /// force ran (the daemon's worker processes), whatever the new one was loaded with.
    pub fn replace(&self, mut m: Mapping) {
        let mut current = self.0.write().expect("mapping lock");
        if let Some(sandbox) = current.programs.runner.sandbox() {
            m.run_in(sandbox.clone());
        }
        *current = std::sync::Arc::new(m);
    }
}
