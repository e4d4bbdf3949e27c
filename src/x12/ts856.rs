//! Typed 856 Ship Notice reader. The HL tree is built from HL01/HL02, not from segment order:
//! HL02 empty or "0" on a shipment (S) level is a root; on a lower level the parent is inferred
//! from the level order S → O → T/P → I (the nearest earlier level above it, warning); an
//! unknown parent attaches to the last S level (warning); a level left without a parent is
//! reported as an orphan; duplicate IDs and parent cycles are errors (reference §5). Each level
//! keeps its TD1/TD3/TD5, MEA, CLD, PO4, FOB, PID, REF, DTM, MAN and N1 loops; fields added
//! after the first release are left out of the serialized form when the file lacks them.

use super::common::{
    code, missing_element, missing_segment, number, parse_dtm, parse_n1, parse_ref, party_detail,
    product_ids, repeated_heading, set_start, txt, Dtm, Party, ProductId, Ref,
};
use super::envelope::Transaction;
use super::error::{Diagnostic, DiagnosticCode, Position};
use super::segment::Segment;
use super::ts850::{Fob, Td5};
use serde::Serialize;
use std::collections::HashMap;

/// TD101, TD102, TD106, TD107, TD108.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Td1 {
    pub packaging: Option<String>,
    pub lading_quantity: Option<String>,
    pub weight_qualifier: Option<String>,
    pub weight: Option<String>,
    pub weight_uom: Option<String>,
    /// TD109 volume and TD110 its unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_uom: Option<String>,
}

/// TD506..TD515 of the TD5 at the same index in `HlNode::td5`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Td5Extra {
    /// Index of the TD5 in `HlNode::td5`.
    pub td5: usize,
    /// TD506 shipment/order status code.
    pub status: Option<String>,
    /// TD507/TD508 location qualifier and identifier.
    pub location_qualifier: Option<String>,
    pub location: Option<String>,
    /// TD509 transit direction.
    pub transit_direction: Option<String>,
    /// TD510/TD511 transit time qualifier and value.
    pub transit_time_qualifier: Option<String>,
    pub transit_time: Option<String>,
    /// TD512..TD514 service level codes.
    pub service_levels: Vec<String>,
    /// TD515 country code.
    pub country: Option<String>,
}

/// TD3 equipment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Td3 {
    /// TD301 equipment description code.
    pub equipment: Option<String>,
    /// TD302 initial, TD303 number.
    pub initial: Option<String>,
    pub number: Option<String>,
    /// TD304..TD306 weight qualifier, weight, unit.
    pub weight_qualifier: Option<String>,
    pub weight: Option<String>,
    pub weight_uom: Option<String>,
    /// TD309 seal number.
    pub seal: Option<String>,
}

/// MEA measurement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Mea {
    /// MEA01 reference, MEA02 qualifier, MEA03 value, MEA04-1 unit.
    pub reference: Option<String>,
    pub qualifier: Option<String>,
    pub value: Option<String>,
    pub uom: Option<String>,
}

/// CLD load detail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cld {
    /// CLD01 number of loads, CLD02 units shipped, CLD03 packaging, CLD04 size, CLD05 unit.
    pub loads: Option<String>,
    pub units: Option<String>,
    pub packaging: Option<String>,
    pub size: Option<String>,
    pub uom: Option<String>,
}

/// PO4 item physical details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Po4 {
    /// PO401 pack, PO402 size, PO403 unit, PO404 packaging code.
    pub pack: Option<String>,
    pub size: Option<String>,
    pub uom: Option<String>,
    pub packaging: Option<String>,
    /// PO405..PO407 weight qualifier, gross weight per pack, unit.
    pub weight_qualifier: Option<String>,
    pub weight: Option<String>,
    pub weight_uom: Option<String>,
}

/// PID description.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pid {
    /// PID01 type (`F` free-form, `S` structured, `X` semi-structured).
    pub kind: Option<String>,
    /// PID02 characteristic, PID03 agency, PID04 description code, PID05 description.
    pub characteristic: Option<String>,
    pub agency: Option<String>,
    pub code: Option<String>,
    pub description: Option<String>,
}

/// PRF01..PRF05.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Prf {
    pub po_number: String,
    pub release: Option<String>,
    pub change_seq: Option<String>,
    pub po_date: Option<String>,
    pub assigned_id: Option<String>,
}

/// MAN01, MAN02, MAN04, MAN05.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Man {
    pub qualifier: String,
    pub value: String,
    pub qualifier2: Option<String>,
    pub value2: Option<String>,
}

/// LIN01 + ID pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lin {
    pub assigned_id: Option<String>,
    pub product_ids: Vec<ProductId>,
}

/// SN101..SN105, SN108.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sn1 {
    pub assigned_id: Option<String>,
    pub quantity: Option<String>,
    pub uom: Option<String>,
    pub quantity_to_date: Option<String>,
    pub quantity_ordered: Option<String>,
    pub status: Option<String>,
    /// SN106 unit of the quantity ordered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordered_uom: Option<String>,
}

/// One HL level and the segments that follow it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HlNode {
    pub id: String,
    pub parent_id: Option<String>,
    /// HL03 uppercased.
    pub level: String,
    /// Index into `Asn856::nodes`.
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub refs: Vec<Ref>,
    pub dates: Vec<Dtm>,
    pub td1: Vec<Td1>,
    pub td5: Vec<Td5>,
    pub prf: Option<Prf>,
    pub man: Vec<Man>,
    pub lin: Option<Lin>,
    pub sn1: Option<Sn1>,
    /// PID05 values.
    pub descriptions: Vec<String>,
    pub parties: Vec<Party>,
    pub position: Position,
    /// HL04 hierarchical child code (`1` has children, `0` none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_code: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub td5_extra: Vec<Td5Extra>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub td3: Vec<Td3>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mea: Vec<Mea>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cld: Vec<Cld>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub po4: Vec<Po4>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fob: Vec<Fob>,
    /// Every PID (its PID05 is also in `descriptions`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pid: Vec<Pid>,
}

/// The 856.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Asn856 {
    pub purpose: String,
    pub shipment_id: String,
    pub date: Option<String>,
    pub time: Option<String>,
    pub structure: Option<String>,
    /// Heading DTMs (before the first HL).
    pub dates: Vec<Dtm>,
    /// File order.
    pub nodes: Vec<HlNode>,
    /// N1 loops of the heading (before the first HL).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parties: Vec<Party>,
}

impl Asn856 {
    /// Nearest ancestor (or the node itself) whose level is `level` (case-insensitive).
    pub fn ancestor(&self, node: usize, level: &str) -> Option<usize> {
        let mut cur = Some(node);
        for _ in 0..=self.nodes.len() {
            let i = cur?;
            let n = self.nodes.get(i)?;
            if n.level.eq_ignore_ascii_case(level) {
                return Some(i);
            }
            cur = n.parent;
        }
        None
    }

    /// Root nodes in file order.
    pub fn roots(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes.get(i).is_some_and(|n| n.parent.is_none()))
    }

    /// Read an 856.
    pub fn parse(tx: &Transaction<'_>) -> (Asn856, Vec<Diagnostic>) {
        let mut a = Asn856::default();
        let mut d = Vec::new();
        let mut seen_bsn = false;
        let mut in_party = false;
        for seg in tx.body() {
            if seg.is("BSN") && seen_bsn {
                d.push(repeated_heading(seg));
            } else if seg.is("BSN") {
                seen_bsn = true;
                a.read_bsn(seg, &mut d);
            } else if seg.is("HL") {
                in_party = false;
                a.nodes.push(HlNode::read(seg, &mut d));
            } else if seg.is("N1") {
                in_party = true;
                let party = parse_n1(seg, &mut d);
                match a.nodes.last_mut() {
                    Some(n) => n.parties.push(party),
                    None => a.parties.push(party),
                }
            } else if in_party && a.last_party().is_some_and(|p| party_detail(p, seg)) {
            } else if let Some(n) = a.nodes.last_mut() {
                n.read_segment(seg, &mut d);
            } else if seg.is("DTM") {
                a.dates.push(parse_dtm(seg, &mut d));
            }
        }
        if !seen_bsn {
            d.push(missing_segment("bsn", set_start(tx)));
        }
        link(&mut a, &mut d);
        (a, d)
    }

    fn read_bsn(&mut self, seg: &Segment<'_>, d: &mut Vec<Diagnostic>) {
        self.purpose = code(seg, 1).unwrap_or_else(|| {
            d.push(missing_element(seg, 1));
            String::new()
        });
        self.shipment_id = txt(seg, 2).unwrap_or_else(|| {
            d.push(missing_element(seg, 2));
            String::new()
        });
        self.date = txt(seg, 3);
        self.time = txt(seg, 4);
        self.structure = txt(seg, 5);
    }

    /// The N1 loop being read: the current level's last, or the heading's.
    fn last_party(&mut self) -> Option<&mut Party> {
        match self.nodes.last_mut() {
            Some(n) => n.parties.last_mut(),
            None => self.parties.last_mut(),
        }
    }
}

impl HlNode {
    /// The HL; the level's segments follow.
    fn read(seg: &Segment<'_>, d: &mut Vec<Diagnostic>) -> HlNode {
        let id = txt(seg, 1).unwrap_or_else(|| {
            d.push(missing_element(seg, 1));
            String::new()
        });
        let parent_id = txt(seg, 2).filter(|p| !p.trim_start_matches('0').is_empty());
        let level = code(seg, 3).unwrap_or_else(|| {
            d.push(missing_element(seg, 3));
            String::new()
        });
        HlNode {
            id,
            parent_id,
            level,
            position: seg.position(),
            child_code: txt(seg, 4),
            ..HlNode::default()
        }
    }

    /// A segment of this level other than HL, N1 and its party's own.
    fn read_segment(&mut self, seg: &Segment<'_>, d: &mut Vec<Diagnostic>) {
        if seg.is("REF") {
            self.refs.push(parse_ref(seg, d));
        } else if seg.is("DTM") {
            self.dates.push(parse_dtm(seg, d));
        } else if seg.is("TD1") {
            self.td1.push(td1(seg));
        } else if seg.is("TD5") {
            self.td5.push(Td5::read(seg));
            self.td5_extra.extend(td5_extra(seg, self.td5.len() - 1));
        } else if seg.is("TD3") {
            self.td3.push(td3(seg));
        } else if seg.is("MEA") {
            self.mea.push(mea(seg));
        } else if seg.is("CLD") {
            self.cld.push(cld(seg));
        } else if seg.is("PO4") {
            self.po4.push(po4(seg));
        } else if seg.is("FOB") {
            self.fob.push(Fob::read(seg));
        } else if seg.is("PRF") {
            self.prf = Some(prf(seg, d));
        } else if seg.is("MAN") {
            self.man.push(Man {
                qualifier: code(seg, 1).unwrap_or_default(),
                value: txt(seg, 2).unwrap_or_default(),
                qualifier2: code(seg, 4),
                value2: txt(seg, 5),
            });
        } else if seg.is("LIN") {
            self.lin = Some(Lin {
                assigned_id: txt(seg, 1),
                product_ids: product_ids(seg, 2, 15),
            });
        } else if seg.is("SN1") {
            self.sn1 = Some(sn1(seg, d));
        } else if seg.is("PID") {
            self.descriptions.extend(txt(seg, 5));
            self.pid.push(pid(seg));
        }
        // CTT: a summary; its counts are the sender's business (warn-only per reference).
    }
}

fn td1(seg: &Segment<'_>) -> Td1 {
    Td1 {
        packaging: code(seg, 1),
        lading_quantity: txt(seg, 2),
        weight_qualifier: code(seg, 6),
        weight: txt(seg, 7),
        weight_uom: code(seg, 8),
        volume: txt(seg, 9),
        volume_uom: code(seg, 10),
    }
}

/// TD506..TD515 when the TD5 carries any of them.
fn td5_extra(seg: &Segment<'_>, td5: usize) -> Option<Td5Extra> {
    (6..=15).any(|k| txt(seg, k).is_some()).then(|| Td5Extra {
        td5,
        status: code(seg, 6),
        location_qualifier: code(seg, 7),
        location: txt(seg, 8),
        transit_direction: code(seg, 9),
        transit_time_qualifier: code(seg, 10),
        transit_time: txt(seg, 11),
        service_levels: (12..=14).filter_map(|k| code(seg, k)).collect(),
        country: code(seg, 15),
    })
}

fn td3(seg: &Segment<'_>) -> Td3 {
    Td3 {
        equipment: code(seg, 1),
        initial: txt(seg, 2),
        number: txt(seg, 3),
        weight_qualifier: code(seg, 4),
        weight: txt(seg, 5),
        weight_uom: code(seg, 6),
        seal: txt(seg, 9),
    }
}

fn mea(seg: &Segment<'_>) -> Mea {
    Mea {
        reference: code(seg, 1),
        qualifier: code(seg, 2),
        value: txt(seg, 3),
        uom: seg
            .component(4, 1)
            .map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| !c.is_empty()),
    }
}

fn cld(seg: &Segment<'_>) -> Cld {
    Cld {
        loads: txt(seg, 1),
        units: txt(seg, 2),
        packaging: code(seg, 3),
        size: txt(seg, 4),
        uom: code(seg, 5),
    }
}

fn po4(seg: &Segment<'_>) -> Po4 {
    Po4 {
        pack: txt(seg, 1),
        size: txt(seg, 2),
        uom: code(seg, 3),
        packaging: code(seg, 4),
        weight_qualifier: code(seg, 5),
        weight: txt(seg, 6),
        weight_uom: code(seg, 7),
    }
}

fn prf(seg: &Segment<'_>, d: &mut Vec<Diagnostic>) -> Prf {
    let po_number = txt(seg, 1).unwrap_or_else(|| {
        d.push(missing_element(seg, 1));
        String::new()
    });
    Prf {
        po_number,
        release: txt(seg, 2),
        change_seq: txt(seg, 3),
        po_date: txt(seg, 4),
        assigned_id: txt(seg, 5),
    }
}

fn sn1(seg: &Segment<'_>, d: &mut Vec<Diagnostic>) -> Sn1 {
    Sn1 {
        assigned_id: txt(seg, 1),
        quantity: number(seg, 2, d),
        uom: code(seg, 3),
        quantity_to_date: number(seg, 4, d),
        quantity_ordered: number(seg, 5, d),
        status: code(seg, 8),
        ordered_uom: code(seg, 6),
    }
}

fn pid(seg: &Segment<'_>) -> Pid {
    Pid {
        kind: code(seg, 1),
        characteristic: code(seg, 2),
        agency: code(seg, 3),
        code: txt(seg, 4),
        description: txt(seg, 5),
    }
}

/// Place of a level in the order S → O → T → P → I; None for other levels.
fn rank(level: &str) -> Option<u8> {
    match level {
        "S" => Some(0),
        "O" => Some(1),
        "T" => Some(2),
        "P" => Some(3),
        "I" => Some(4),
        _ => None,
    }
}

/// The parent of node `i`, whose HL02 is blank (or `0`): none for a shipment level (a root);
/// for a lower level the nearest earlier node of a level above it, with a warning; none, with an
/// orphan warning, when there is no such node.
fn infer_parent(nodes: &[HlNode], i: usize, d: &mut Vec<Diagnostic>) -> Option<usize> {
    let n = nodes.get(i)?;
    let r = rank(&n.level).filter(|&r| r > 0)?;
    let found = (0..i).rev().find(|&j| {
        nodes
            .get(j)
            .and_then(|p| rank(&p.level))
            .is_some_and(|pr| pr < r)
    });
    match found.and_then(|j| nodes.get(j).map(|p| (j, p))) {
        Some((j, p)) => {
            d.push(Diagnostic::warning(
                DiagnosticCode::HlInferredParent,
                format!(
                    "hl02 of hl {:?} (level {}) is blank; parent inferred from the level order: hl {:?} (level {})",
                    n.id, n.level, p.id, p.level
                ),
                n.position.with_element(2),
            ));
            Some(j)
        }
        None => {
            d.push(Diagnostic::warning(
                DiagnosticCode::HlOrphan,
                format!(
                    "hl {:?} (level {}) has no parent: hl02 is blank and no earlier level is above it",
                    n.id, n.level
                ),
                n.position.with_element(2),
            ));
            None
        }
    }
}

fn link(a: &mut Asn856, d: &mut Vec<Diagnostic>) {
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (i, n) in a.nodes.iter().enumerate() {
        if by_id.contains_key(&n.id) {
            d.push(Diagnostic::error(
                DiagnosticCode::HlDuplicate,
                format!("hl01 {:?} used twice", n.id),
                n.position.with_element(1),
            ));
        } else {
            by_id.insert(n.id.clone(), i);
        }
    }
    let mut last_s: Option<usize> = None;
    let mut parents: Vec<Option<usize>> = Vec::with_capacity(a.nodes.len());
    for (i, n) in a.nodes.iter().enumerate() {
        let p = match &n.parent_id {
            None => infer_parent(&a.nodes, i, d),
            Some(pid) => match by_id.get(pid) {
                Some(&p) if p != i => Some(p),
                Some(_) => {
                    d.push(Diagnostic::error(
                        DiagnosticCode::HlCycle,
                        format!("hl {:?} is its own parent", n.id),
                        n.position.with_element(2),
                    ));
                    None
                }
                None => {
                    d.push(Diagnostic::warning(
                        DiagnosticCode::HlOrphan,
                        format!(
                            "hl {:?} names unknown parent {:?}, attached to the last shipment level",
                            n.id, pid
                        ),
                        n.position.with_element(2),
                    ));
                    last_s.filter(|&s| s != i)
                }
            },
        };
        parents.push(p);
        if n.level == "S" {
            last_s = Some(i);
        }
    }
    // break cycles: walk up from every node; if we come back to it, cut its link
    let len = parents.len();
    for i in 0..len {
        let mut cur = parents.get(i).copied().flatten();
        let mut steps = 0;
        while let Some(c) = cur {
            if c == i || steps > len {
                if let Some(n) = a.nodes.get(i) {
                    d.push(Diagnostic::error(
                        DiagnosticCode::HlCycle,
                        format!("hl {:?} parent chain loops", n.id),
                        n.position.with_element(2),
                    ));
                }
                if let Some(p) = parents.get_mut(i) {
                    *p = None;
                }
                break;
            }
            cur = parents.get(c).copied().flatten();
            steps += 1;
        }
    }
    for (i, p) in parents.iter().enumerate() {
        if let Some(n) = a.nodes.get_mut(i) {
            n.parent = *p;
        }
        if let Some(pn) = p.and_then(|p| a.nodes.get_mut(p)) {
            pn.children.push(i);
        }
    }
}
