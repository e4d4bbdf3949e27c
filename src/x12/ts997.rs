//! Typed 997 Functional Acknowledgment: reader (`Ack997::parse`), builder from our own
//! diagnostics (`Ack997::for_group`) and writer (`Ack997::to_transaction`), reference §2.

use super::common::{code, missing_element, missing_segment, txt, unexpected};
use super::envelope::{Group, GsHeader, Transaction};
use super::error::{Diagnostic, Severity};
use super::writer::{OutSegment, OutTransaction, Version};
use serde::Serialize;

/// AK4.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ElementError {
    /// AK401-1 element position.
    pub position: String,
    /// AK401-2 component position.
    pub component: Option<String>,
    /// AK402 data element reference number.
    pub reference: Option<String>,
    /// AK403 (723).
    pub code: String,
    /// AK404 copy of bad data.
    pub bad_value: Option<String>,
}

/// AK3 + its AK4s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SegmentError {
    pub segment_id: String,
    /// AK302, ST = 1.
    pub position: String,
    pub loop_id: Option<String>,
    /// AK304 (720).
    pub code: Option<String>,
    pub elements: Vec<ElementError>,
}

/// AK2 loop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SetAck {
    pub set_id: String,
    pub control_number: String,
    pub segment_errors: Vec<SegmentError>,
    /// AK501 (717).
    pub status: String,
    /// AK502..AK506 (718).
    pub errors: Vec<String>,
}

impl SetAck {
    /// The AK2 loop for one received set from the diagnostics positioned in it (the reader's
    /// and the typed parser's): AK3/AK4 for each segment and element problem with its X12
    /// code, AK502.. for the set, and `R` when any is an error (or the set is not closed), `E`
    /// when only notes, else `A`.
    pub fn for_set(t: &Transaction<'_>, ds: &[Diagnostic]) -> SetAck {
        let mut set = SetAck {
            set_id: t.id.clone(),
            control_number: t.control_number.clone(),
            ..SetAck::default()
        };
        for d in ds {
            if let (Some(c), Some(pos)) = (d.code.ak304(), d.position.segment_in_set) {
                let seg_id = d.position.segment_id.clone().unwrap_or_default();
                let p = pos.to_string();
                let idx = match set
                    .segment_errors
                    .iter()
                    .position(|e| e.position == p && e.segment_id == seg_id)
                {
                    Some(i) => i,
                    None => {
                        set.segment_errors.push(SegmentError {
                            segment_id: seg_id,
                            position: p,
                            loop_id: None,
                            code: Some(c.to_string()),
                            elements: Vec::new(),
                        });
                        set.segment_errors.len() - 1
                    }
                };
                if let (Some(ec), Some(el)) = (d.code.ak403(), d.position.element) {
                    let bad = t
                        .segments
                        .get(pos.saturating_sub(1))
                        .and_then(|s| s.element(el))
                        .map(|v| v.chars().take(99).collect::<String>())
                        .filter(|v| !v.is_empty());
                    if let Some(se) = set.segment_errors.get_mut(idx) {
                        if se.elements.len() < 99 {
                            se.elements.push(ElementError {
                                position: el.to_string(),
                                component: d.position.component.map(|c| c.to_string()),
                                reference: None,
                                code: ec.to_string(),
                                bad_value: bad,
                            });
                        }
                    }
                }
            }
            if let Some(c) = d.code.ak5() {
                push_unique(&mut set.errors, c, 5);
            }
        }
        let has_error = ds.iter().any(|d| d.severity == Severity::Error) || !t.closed;
        let has_note = !set.errors.is_empty() || !set.segment_errors.is_empty();
        set.status = if has_error {
            "R".into()
        } else if has_note {
            "E".into()
        } else {
            "A".into()
        };
        set
    }

    /// Refuses a set the bridge did not turn into a call: `R`, keeping its codes.
    pub fn reject(&mut self) {
        self.status = "R".into();
    }
}

/// The 997.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ack997 {
    pub functional_id: String,
    pub group_control: String,
    /// AK103 (5010).
    pub version: Option<String>,
    pub sets: Vec<SetAck>,
    /// AK901 (715).
    pub group_status: String,
    pub included: Option<String>,
    pub received: Option<String>,
    pub accepted: Option<String>,
    /// AK905..AK909 (716).
    pub group_errors: Vec<String>,
}

fn push_unique(v: &mut Vec<String>, c: &str, max: usize) {
    if v.len() < max && !v.iter().any(|x| x == c) {
        v.push(c.to_string());
    }
}

impl Ack997 {
    /// Read a 997.
    pub fn parse(tx: &Transaction<'_>) -> (Ack997, Vec<Diagnostic>) {
        let mut a = Ack997::default();
        let mut d = Vec::new();
        let mut seen_ak1 = false;
        let mut seen_ak9 = false;
        for seg in tx.body() {
            if seg.is("AK1") {
                seen_ak1 = true;
                a.functional_id = code(seg, 1).unwrap_or_else(|| {
                    d.push(missing_element(seg, 1));
                    String::new()
                });
                a.group_control = txt(seg, 2).unwrap_or_else(|| {
                    d.push(missing_element(seg, 2));
                    String::new()
                });
                a.version = txt(seg, 3);
            } else if seg.is("AK2") {
                a.sets.push(SetAck {
                    set_id: txt(seg, 1).unwrap_or_default(),
                    control_number: txt(seg, 2).unwrap_or_default(),
                    ..SetAck::default()
                });
            } else if seg.is("AK3") {
                match a.sets.last_mut() {
                    Some(s) => s.segment_errors.push(SegmentError {
                        segment_id: code(seg, 1).unwrap_or_default(),
                        position: txt(seg, 2).unwrap_or_default(),
                        loop_id: txt(seg, 3),
                        code: txt(seg, 4),
                        elements: Vec::new(),
                    }),
                    None => d.push(unexpected(seg, "before any ak2")),
                }
            } else if seg.is("AK4") {
                match a.sets.last_mut().and_then(|s| s.segment_errors.last_mut()) {
                    Some(e) => e.elements.push(ElementError {
                        position: seg
                            .component(1, 1)
                            .map(|c| c.trim().to_string())
                            .unwrap_or_default(),
                        component: seg.component(1, 2).map(|c| c.trim().to_string()),
                        reference: txt(seg, 2),
                        code: txt(seg, 3).unwrap_or_default(),
                        bad_value: seg.element(4).map(|c| c.into_owned()),
                    }),
                    None => d.push(unexpected(seg, "before any ak3")),
                }
            } else if seg.is("AK5") {
                match a.sets.last_mut() {
                    Some(s) => {
                        s.status = code(seg, 1).unwrap_or_default();
                        s.errors = (2..=6).filter_map(|n| txt(seg, n)).collect();
                    }
                    None => d.push(unexpected(seg, "before any ak2")),
                }
            } else if seg.is("AK9") {
                seen_ak9 = true;
                a.group_status = code(seg, 1).unwrap_or_else(|| {
                    d.push(missing_element(seg, 1));
                    String::new()
                });
                a.included = txt(seg, 2);
                a.received = txt(seg, 3);
                a.accepted = txt(seg, 4);
                a.group_errors = (5..=9).filter_map(|n| txt(seg, n)).collect();
            }
        }
        let at = tx
            .segments
            .first()
            .map(|s| s.position())
            .unwrap_or_default();
        if !seen_ak1 {
            d.push(missing_segment("ak1", at.clone()));
        }
        if !seen_ak9 {
            d.push(missing_segment("ak9", at));
        }
        (a, d)
    }

    /// Build the 997 for one received group from the diagnostics positioned in it. `group`
    /// must come from the `Document` the diagnostics were produced for.
    pub fn for_group(group: &Group<'_>, diagnostics: &[Diagnostic], version: Version) -> Ack997 {
        let in_group: Vec<Diagnostic> = diagnostics
            .iter()
            .filter(|d| {
                d.position.interchange == Some(group.interchange)
                    && d.position.group == Some(group.index)
            })
            .cloned()
            .collect();
        let sets = group
            .transactions
            .iter()
            .map(|t| {
                let ds: Vec<Diagnostic> = in_group
                    .iter()
                    .filter(|d| d.position.transaction == Some(t.index))
                    .cloned()
                    .collect();
                SetAck::for_set(t, &ds)
            })
            .collect();
        Ack997::for_sets(&group.header, sets, &in_group, version)
    }

    /// Build the 997 for one received group from its sets' acknowledgments (each from
    /// [`SetAck::for_set`], in order) and the diagnostics positioned in the group: what a
    /// streaming reader builds set by set, without holding the group.
    pub fn for_sets(
        header: &GsHeader,
        sets: Vec<SetAck>,
        group_diagnostics: &[Diagnostic],
        version: Version,
    ) -> Ack997 {
        let accepted = sets.iter().filter(|s| s.status != "R").count();
        let any_e = sets.iter().any(|s| s.status == "E");
        let mut group_errors = Vec::new();
        for d in group_diagnostics {
            if let Some(c) = d.code.ak9() {
                push_unique(&mut group_errors, c, 5);
            }
        }
        let n = sets.len();
        let group_status = if accepted == 0 && n > 0 {
            "R"
        } else if accepted < n {
            "P"
        } else if any_e || !group_errors.is_empty() {
            "E"
        } else {
            "A"
        };
        Ack997 {
            functional_id: header.functional_id.clone(),
            group_control: header.control_number.clone(),
            version: match version {
                Version::V5010 => Some(header.version.clone()).filter(|v| !v.is_empty()),
                Version::V4010 => None,
            },
            sets,
            group_status: group_status.into(),
            included: Some(n.to_string()),
            received: Some(n.to_string()),
            accepted: Some(accepted.to_string()),
            group_errors,
        }
    }

    /// Render the 997 body.
    pub fn to_transaction(&self, control_number: &str) -> OutTransaction {
        let mut s = vec![OutSegment::new("AK1")
            .el(&self.functional_id)
            .el(&self.group_control)
            .opt(self.version.as_deref())];
        for set in &self.sets {
            s.push(
                OutSegment::new("AK2")
                    .el(&set.set_id)
                    .el(&set.control_number),
            );
            for e in &set.segment_errors {
                s.push(
                    OutSegment::new("AK3")
                        .el(&e.segment_id)
                        .el(&e.position)
                        .opt(e.loop_id.as_deref())
                        .opt(e.code.as_deref()),
                );
                for el in &e.elements {
                    let mut c = vec![el.position.clone()];
                    c.extend(el.component.clone());
                    s.push(
                        OutSegment::new("AK4")
                            .comp(c)
                            .opt(el.reference.as_deref())
                            .el(&el.code)
                            .opt(el.bad_value.as_deref()),
                    );
                }
            }
            let mut ak5 = OutSegment::new("AK5").el(&set.status);
            for e in set.errors.iter().take(5) {
                ak5 = ak5.el(e);
            }
            s.push(ak5);
        }
        let mut ak9 = OutSegment::new("AK9")
            .el(&self.group_status)
            .opt(self.included.as_deref())
            .opt(self.received.as_deref())
            .opt(self.accepted.as_deref());
        for e in self.group_errors.iter().take(5) {
            ak9 = ak9.el(e);
        }
        s.push(ak9);
        OutTransaction {
            id: "997".into(),
            control_number: control_number.into(),
            implementation_ref: None,
            segments: s,
        }
    }
}
