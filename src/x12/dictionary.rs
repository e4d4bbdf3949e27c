//! The X12 segment dictionary the reader checks segment IDs against: the segment IDs of the
//! ASC X12 releases 003040 to 005010 that supply-chain, logistics, finance and health-care
//! transaction sets use, plus the envelope and acknowledgment segments. A syntactically valid ID
//! that is not here gets an `UnknownSegmentId` warning (often the symptom of a wrapped line).
//! The list is data only: which segment a typed view reads is decided by the view.

/// Every segment ID the reader knows, in alphabetical order.
pub(super) const SEGMENT_IDS: &[&[u8]] = &[
    b"AAA", b"ACD", b"ACK", b"ACS", b"ACT", b"AD1", b"ADJ", b"ADV", b"ADX", b"AIN", b"AK1", b"AK2",
    b"AK3", b"AK4", b"AK5", b"AK9", b"AMT", b"API", b"AT1", b"AT2", b"AT3", b"AT4", b"AT5", b"AT6",
    b"AT7", b"AT8", b"AT9", b"ATH", b"ATV", b"B1", b"B10", b"B11", b"B2", b"B2A", b"B3", b"B4",
    b"BAK", b"BAL", b"BAU", b"BAX", b"BCA", b"BCD", b"BCH", b"BCM", b"BCO", b"BCP", b"BCQ", b"BCT",
    b"BDS", b"BEG", b"BEN", b"BFR", b"BGN", b"BHT", b"BIA", b"BIG", b"BIN", b"BLI", b"BLN", b"BLR",
    b"BMA", b"BMG", b"BNX", b"BOL", b"BOS", b"BPR", b"BPS", b"BQR", b"BQT", b"BR", b"BRA", b"BSC",
    b"BSI", b"BSN", b"BSR", b"BSS", b"BTA", b"BTI", b"BTP", b"BTR", b"BUY", b"BX", b"CAD", b"CAS",
    b"CB1", b"CD2", b"CDA", b"CDD", b"CDS", b"CL1", b"CLD", b"CLI", b"CLM", b"CLP", b"CM", b"CN1",
    b"COB", b"COM", b"CON", b"CPR", b"CR1", b"CR2", b"CR3", b"CR4", b"CR5", b"CR6", b"CR7", b"CR8",
    b"CRC", b"CS", b"CSH", b"CSI", b"CSM", b"CTB", b"CTC", b"CTP", b"CTT", b"CTX", b"CUR", b"D8",
    b"D9", b"DAD", b"DB", b"DED", b"DFI", b"DK", b"DL", b"DMG", b"DMI", b"DN1", b"DN2", b"DSB",
    b"DTM", b"DTP", b"E1", b"E4", b"E6", b"E8", b"EB", b"EC", b"EFI", b"EM", b"ENT", b"EQ", b"EQD",
    b"ETD", b"F9", b"FA1", b"FA2", b"FOB", b"FST", b"G1", b"G17", b"G18", b"G19", b"G20", b"G22",
    b"G23", b"G25", b"G26", b"G27", b"G28", b"G29", b"G31", b"G32", b"G33", b"G36", b"G38", b"G39",
    b"G40", b"G43", b"G46", b"G47", b"G50", b"G51", b"G53", b"G54", b"G55", b"G61", b"G62", b"G66",
    b"G68", b"G69", b"G72", b"G73", b"G82", b"G83", b"G84", b"G85", b"G86", b"G87", b"G92", b"G93",
    b"G94", b"G95", b"GA", b"GE", b"GF", b"GS", b"H1", b"H3", b"HCP", b"HCR", b"HD", b"HI", b"HL",
    b"HLH", b"HSD", b"ICM", b"IDC", b"IEA", b"IHE", b"III", b"IK3", b"IK4", b"IK5", b"IMM", b"IN1",
    b"IN2", b"INC", b"INS", b"INV", b"ISA", b"ISS", b"IT1", b"IT3", b"IT8", b"IT9", b"ITA", b"ITD",
    b"K1", b"K2", b"K3", b"L0", b"L1", b"L10", b"L11", b"L3", b"L4", b"L5", b"L7", b"LAD", b"LC",
    b"LDT", b"LE", b"LFH", b"LH1", b"LH2", b"LH3", b"LH4", b"LH6", b"LHE", b"LHR", b"LHT", b"LIN",
    b"LM", b"LQ", b"LS", b"LUI", b"LX", b"M1", b"M3", b"M7", b"MAN", b"MEA", b"MIA", b"MOA",
    b"MPI", b"MS1", b"MS2", b"MS3", b"MS4", b"MSG", b"MTX", b"N1", b"N10", b"N2", b"N3", b"N4",
    b"N5", b"N7", b"N9", b"NM1", b"NTE", b"NX1", b"NX2", b"OI", b"OID", b"OQ", b"OTI", b"PAL",
    b"PAM", b"PAT", b"PCT", b"PD", b"PDD", b"PDS", b"PER", b"PID", b"PKG", b"PLA", b"PLB", b"PO1",
    b"PO3", b"PO4", b"POC", b"POS", b"PRF", b"PRV", b"PS1", b"PSD", b"PWK", b"PYD", b"Q2", b"Q5",
    b"Q7", b"QTY", b"R2", b"R4", b"RCD", b"RCV", b"RDM", b"RDR", b"REF", b"RMR", b"RPA", b"RTE",
    b"SAC", b"SBR", b"SCH", b"SD1", b"SDP", b"SDQ", b"SE", b"SG", b"SHP", b"SI", b"SII", b"SLN",
    b"SMD", b"SN1", b"SPI", b"SR", b"SRT", b"SSS", b"ST", b"STC", b"SV1", b"SV2", b"SV3", b"SV4",
    b"SV5", b"SVC", b"SVD", b"TA1", b"TAX", b"TC2", b"TD1", b"TD3", b"TD4", b"TD5", b"TDS", b"TED",
    b"TFS", b"TI", b"TMD", b"TOO", b"TRN", b"TS2", b"TS3", b"TSD", b"TSU", b"TXI", b"UIT", b"UM",
    b"USD", b"V1", b"V9", b"W01", b"W03", b"W04", b"W05", b"W06", b"W07", b"W08", b"W09", b"W10",
    b"W12", b"W13", b"W15", b"W17", b"W19", b"W20", b"W27", b"W28", b"W66", b"W76", b"W79", b"YNQ",
    b"ZA",
];

#[cfg(test)]
mod tests {
    use super::SEGMENT_IDS;

    #[test]
    fn the_dictionary_is_sorted_unique_and_well_formed() {
        for w in SEGMENT_IDS.windows(2) {
            assert!(w[0] < w[1], "{:?} before {:?}", w[0], w[1]);
        }
        for id in SEGMENT_IDS {
            assert!((2..=3).contains(&id.len()), "{id:?}");
            assert!(id[0].is_ascii_uppercase(), "{id:?}");
            assert!(id
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        }
        for seg in [
            &b"CLD"[..],
            b"TAX",
            b"IT8",
            b"SI",
            b"TD3",
            b"SCH",
            b"PO4",
            b"MEA",
        ] {
            assert!(SEGMENT_IDS.contains(&seg), "{seg:?}");
        }
    }
}
