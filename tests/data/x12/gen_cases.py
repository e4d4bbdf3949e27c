#!/usr/bin/env python3
"""Generates the golden input files (*.edi) under ok/ and err/. Expectations (*.json) are written
by the Rust runner with UPDATE_EXPECT=1. Run from this directory: python3 gen_cases.py"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def isa(ctrl=101, e="*", c=">", t="~", rep="U", ver="00401", snd="INGRAMMICRO", rcv="VENDORERP"):
    f = ["ISA", "00", " " * 10, "00", " " * 10, "ZZ", snd.ljust(15), "ZZ", rcv.ljust(15),
         "250101", "1200", rep, ver, str(ctrl).zfill(9), "0", "P", c]
    s = e.join(f) + t
    assert len(s.encode()) >= 106
    return s


def env(body_sets, gs01="PO", ctrl=101, e="*", c=">", t="~", nl="\n", rep="U", ver="00401",
        gs08="004010", gsctl=None, iea=True, ge=True):
    gsctl = gsctl if gsctl is not None else ctrl
    out = isa(ctrl, e, c, t, rep, ver) + nl
    out += e.join(["GS", gs01, "INGRAMMICRO", "VENDORERP", "20250101", "1200", str(gsctl), "X", gs08]) + t + nl
    for i, segs in enumerate(body_sets):
        out += st_se(segs, "%04d" % (i + 1), e, t, nl, ident=body_ident(segs))
    if ge:
        out += e.join(["GE", str(len(body_sets)), str(gsctl)]) + t + nl
    if iea:
        out += e.join(["IEA", "1", str(ctrl).zfill(9)]) + t + nl
    return out


def body_ident(segs):
    first = segs[0].split("*")[0].upper()
    return {"BEG": "850", "BAK": "855", "BSN": "856", "AK1": "997"}.get(first, "850")


def st_se(segs, ctl, e="*", t="~", nl="\n", ident="850", count=None, se_ctl=None):
    segs = [s.replace("*", e) for s in segs]
    out = e.join(["ST", ident, ctl]) + t + nl
    for s in segs:
        out += s + t + nl
    n = count if count is not None else len(segs) + 2
    out += e.join(["SE", str(n), se_ctl or ctl]) + t + nl
    return out


PO850 = [
    "BEG*00*SA*4512345678**20250101",
    "CUR*BY*USD",
    "REF*CO*RESELLER-PO-77",
    "ITD*01*3*****30*****NET 30",
    "N1*ST*ACME CORP RECEIVING*92*SHIP0001",
    "N3*100 MAIN ST",
    "N4*SANTA ANA*CA*92705*US",
    "PO1*1*5*EA*123.45*PE*VP*ABC-123*BP*1A2B3C*UP*012345678905",
    "PID*F****WIDGET 24 PORT SWITCH",
    "CTT*1*5",
    "AMT*TT*617.25",
]

PO850_FULL = [
    "BEG*00*DS*4512345679*1*20250102*CT-99",
    "CUR*BY*CAD",
    "REF*CO*RESELLER-PO-78",
    "REF*PR*QUOTE-5*VENDOR QUOTE",
    "PER*BD*JANE BUYER*TE*5551234567*EM*JANE@EXAMPLE.COM",
    "FOB*PP*OR*ORIGIN",
    "ITD*01*3*****90*****NET 90",
    "DTM*002*20250115",
    "DTM*010*20250110*1530",
    "TD5*B*2*FDEG*U*FEDX GROUND",
    "N9*ZZ*ORDERTYPE",
    "MSG*GOVERNMENT ORDER",
    "MSG*SHIP COMPLETE",
    "N1*ST*ACME CORP*92*SHIP0002",
    "N2*ATTN RECEIVING*DOCK 4",
    "N3*100 MAIN ST*SUITE 5",
    "N4*TORONTO*ON*M5V 2T6*CA",
    "PER*IC*BOB*TE*5550001111",
    "N1*BT*INGRAM MICRO INC*92*BILL01",
    "N1*EN*END USER LLC",
    "PO1*1*5*EA*123.45*PE*VP*ABC-123*BP*1A2B3C",
    "PID*F****WIDGET 24 PORT SWITCH",
    "REF*EU*ENDUSER-PO-1",
    "DTM*002*20250120",
    "MSG*LINE NOTE",
    "PO1*2*2.5*EA*10*PE*VP*XYZ-9",
    "CTT*2*7.5",
    "AMT*TT*642.25",
]

ACK855 = [
    "BAK*00*AC*4512345678*20250101****SO-998877*20250102",
    "REF*VN*SO-998877",
    "N1*ST*ACME CORP RECEIVING*92*SHIP0001",
    "PO1*1*5*EA*123.45*PE*VP*ABC-123*BP*1A2B3C",
    "ACK*IA*5*EA*068*20250105",
    "PO1*2*3*EA*10.00*PE*VP*XYZ-9",
    "ACK*IR*3*EA",
]

ACK855_SPLIT = [
    "BAK*00*AC*4512345678*20250101****SO-1*20250102",
    "PO1*1*10*EA*5*PE*VP*ABC-123",
    "ACK*IA*6*EA*068*20250105",
    "ACK*IB*4*EA*068*20250301",
    "DTM*067*20250310",
    "PO1*2*1*EA*5*PE*VP*OLD-1",
    "ACK*IS*1*EA********VP*NEW-1",
]

ACK855_HEADER = ["BAK*00*AK*4512345678*20250101****SO-2*20250102"]

ASN856 = [
    "BSN*00*ASN0001*20250105*1430*0001",
    "DTM*011*20250105",
    "HL*1**S",
    "TD1*CTN25*2****G*12.5*LB",
    "TD5*B*2*UPSN*U*UPS GROUND",
    "REF*BM*BOL123",
    "N1*SF*VENDOR WAREHOUSE*92*WH1",
    "N4*RENO*NV*89501*US",
    "N1*ST*ACME CORP RECEIVING*92*SHIP0001",
    "HL*2*1*O",
    "PRF*4512345678***20250101",
    "REF*IV*INV-1",
    "HL*3*2*P",
    "MAN*GM*00012345678901234567*CP*1Z999AA10123456784",
    "HL*4*3*I",
    "LIN*1*VP*ABC-123*BP*1A2B3C",
    "SN1*1*3*EA**5*EA**AC",
    "PID*F****WIDGET 24 PORT SWITCH",
    "REF*SE*SER001",
    "REF*SE*SER002",
    "REF*SE*SER003",
    "HL*5*2*P",
    "MAN*CP*1Z999AA10123456795",
    "HL*6*5*I",
    "LIN*1*VP*ABC-123",
    "SN1*1*2*EA",
    "CTT*6",
]

ASN856_CANADA = [
    "BSN*00*0123456*20170405*1200",
    "HL*1*0*S*1",
    "TD5*O*2*PRLA*M*PURO GRND",
    "REF*CN*329000000001",
    "DTM*011*20170405",
    "N1*SF*INGRAM MICRO  CANADA*91*40",
    "HL*2*1*O*1",
    "PRF*101-292842576***20170404",
    "REF*IV*INV777",
    "HL*3*2*P*1",
    "REF*2I*329000000001",
    "HL*4*3*I*0",
    "LIN*000001*VP*N82E1*MG*M1*BP*B1*UP*012345678905",
    "SN1**1*EA**1*EA**AC",
    "PID*X****ITEM DESC",
    "CTT*4",
]

ASN856_SOI = [
    "BSN*00*ASN0002*20250105*1430*0004",
    "HL*1**S",
    "TD5*B*2*FDEG",
    "REF*CN*TRACK1",
    "HL*2*1*O",
    "PRF*PO1",
    "HL*3*2*I",
    "LIN**VP*A",
    "SN1**1*EA",
    "HL*4*1*O",
    "PRF*PO2",
    "HL*5*4*I",
    "LIN*2*VP*B",
    "SN1*2*4*EA",
]

ASN856_ITEMS_UNDER_S = [
    "BSN*00*ASN0003*20250105",
    "HL*1**S",
    "HL*2*1*I",
    "LIN*1*VP*A",
    "SN1*1*1*EA",
    "HL*3*1*I",
    "LIN*2*VP*B",
    "SN1*2*1*EA",
]

FA997 = ["AK1*PO*101", "AK2*850*0001", "AK5*A", "AK9*A*1*1*1"]
FA997_REJECT = [
    "AK1*PO*102",
    "AK2*850*0001",
    "AK3*PO1*8**8",
    "AK4*2>1*330*1",
    "AK4*4**6*12X.5",
    "AK5*R*5",
    "AK9*R*1*1*0",
]


def w(kind, name, data):
    path = os.path.join(HERE, kind, name + ".edi")
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)


def ok_cases():
    w("ok", "0001_850_basic", env([PO850]))
    w("ok", "0002_855_dnh", env([ACK855], gs01="PR"))
    w("ok", "0003_856_sopi", env([ASN856], gs01="SH"))
    w("ok", "0004_997_accept", env([FA997], gs01="FA"))
    w("ok", "0005_bom", b"\xef\xbb\xbf" + env([PO850]).encode())
    w("ok", "0006_junk_before_isa", "From: van@example.com\nSubject: orders\n\n" + env([PO850]))
    w("ok", "0007_crlf_after_terminator", env([PO850], nl="\r\n"))
    w("ok", "0008_newline_terminator", env([ACK855], gs01="PR", t="\n", nl=""))
    w("ok", "0009_cr_terminator", env([PO850], t="\r", nl=""))
    w("ok", "0010_crlf_terminator", env([PO850], t="\r", nl="\n"))
    w("ok", "0011_pipe_element", env([PO850], e="|", c="^"))
    w("ok", "0012_caret_element", env([ASN856], gs01="SH", e="^", c=":"))
    w("ok", "0013_swapped_roles", env([ASN856], gs01="SH", e="~", c=">", t="*", nl="\n"))
    w("ok", "0014_bang_terminator", env([PO850], t="!", nl=""))
    w("ok", "0015_gs_control_terminator", env([PO850], t="\x1d", nl="\n"))
    w("ok", "0016_ellipsis_terminator", env([ACK855], gs01="PR", t="\u2026", nl=""))
    flat = env([PO850], nl="")
    w("ok", "0017_wrapped_80_columns", "\n".join(flat[i:i + 80] for i in range(0, len(flat), 80)) + "\n")
    w("ok", "0018_linebreak_in_data", env([PO850]).replace("WIDGET 24 PORT", "WIDGET 24\r\n PORT").replace("N3*100 MAIN ST", "N3*100 MAIN\nST"))
    w("ok", "0019_indented", env([PO850]).replace("\nN", "\n    N").replace("\nPO1", "\n  PO1"))
    w("ok", "0020_one_line", env([PO850, PO850], nl=""))
    w("ok", "0021_empty_segments", env([PO850]).replace("CUR*BY*USD~", "CUR*BY*USD~~").rstrip("\n") + "\n~\n")
    two = env([PO850]) + env([ASN856], gs01="SH", ctrl=102, e="|", c="^", t="\n", nl="")
    w("ok", "0022_two_interchanges_different_delimiters", two)
    mixed = isa(103) + "\n"
    mixed += "GS*SH*INGRAMMICRO*VENDORERP*20250101*1200*1*X*004010~\n" + st_se(ASN856_CANADA, "0001", ident="856") + st_se(ASN856_SOI, "0002", ident="856") + "GE*2*1~\n"
    mixed += "GS*FA*INGRAMMICRO*VENDORERP*20250101*1200*2*X*004010~\n" + st_se(FA997, "0003", ident="997") + "GE*1*2~\n"
    mixed += "IEA*2*000000103~\n"
    w("ok", "0023_multi_group_multi_set", mixed)
    w("ok", "0024_bare_st_se", st_se(PO850, "0001") + st_se(ACK855, "0002", ident="855"))
    rep5010 = env([["BEG*00*SA*4512345678**20250101", "REF*ZZ*A^B^C", "PO1*1*5*EA*1*PE*VP*X", "CTT*1"]], rep="^", ver="00501", gs08="005010")
    rep5010 = rep5010.replace("ST*850*0001~", "ST*850*0001*005010X000~")
    w("ok", "0025_5010_repetition", rep5010)
    w("ok", "0026_version_suffix_vics", env([ASN856_SOI], gs01="SH", gs08="004010VICS"))
    w("ok", "0027_lowercase", env([[s.lower() for s in ACK855]], gs01="PR").replace("ST*855", "st*855").replace("SE*", "se*"))
    w("ok", "0028_latin1_bytes", env([PO850]).encode().replace(b"ACME CORP RECEIVING", b"ACME S\xc3\xa3o Paulo").replace(b"WIDGET 24 PORT SWITCH", b"CAF\xc9 M\xdcNCHEN"))
    unp = "ISA*00**00**ZZ*INGRAMMICRO*ZZ*VENDORERP*250101*1200*U*00401*101*0*P*>~\n" + env([PO850]).split("\n", 1)[1]
    w("ok", "0029_isa_unpadded", unp)
    w("ok", "0030_trailing_separator", env([ASN856_SOI], gs01="SH").replace("REF*CN*TRACK1~", "REF*CN*TRACK1*~"))
    w("ok", "0031_856_hl02_zero", env([ASN856_CANADA], gs01="SH"))
    w("ok", "0032_856_soi", env([ASN856_SOI], gs01="SH"))
    w("ok", "0033_855_split_ack", env([ACK855_SPLIT], gs01="PR"))
    w("ok", "0034_855_header_only", env([ACK855_HEADER], gs01="PR"))
    w("ok", "0035_997_reject_detail", env([FA997_REJECT], gs01="FA"))
    w("ok", "0036_caret_isa11_in_4010", env([["BEG*00*SA*1**20250101", "REF*ZZ*A^B", "CTT*0"]], rep="^"))
    w("ok", "0037_no_final_terminator", env([PO850]).rstrip("\n").rstrip("~"))
    w("ok", "0038_850_full", env([PO850_FULL]))
    w("ok", "0039_856_items_under_s", env([ASN856_ITEMS_UNDER_S], gs01="SH"))
    w("ok", "0040_control_numbers_padded", env([PO850], gsctl="000101").replace("GE*1*000101", "GE*1*101").replace("IEA*1*000000101", "IEA*1*101"))
    w("ok", "0041_composites", env([["BEG*00*SA*1**20250101", "PO1*1*5*EA", "SLN*1**I*2*EA>1>2", "CTT*1"]]))
    w("ok", "0042_spaces_in_values", env([["BEG*00*SA* 4512 **20250101", "N1*ST*  ACME  ", "N3*5555 161TH AVE ", "PO1*1*5*EA", "CTT*1"]]))
    w("ok", "0043_three_interchanges_newline_star", env([FA997], gs01="FA", ctrl=1) + env([FA997], gs01="FA", ctrl=2, t="\n", nl="") + env([FA997], gs01="FA", ctrl=3, e="|", c=">", t="'"))
    real_world_ok_cases()


def err_cases():
    w("err", "0001_missing_iea", env([PO850], iea=False))
    w("err", "0002_iea_count_mismatch", env([PO850]).replace("IEA*1*", "IEA*2*"))
    w("err", "0003_iea_control_mismatch", env([PO850]).replace("IEA*1*000000101", "IEA*1*000000999"))
    w("err", "0004_missing_ge", env([PO850], ge=False))
    w("err", "0005_ge_count_mismatch", env([PO850]).replace("GE*1*101", "GE*3*101"))
    w("err", "0006_ge_control_mismatch", env([PO850]).replace("GE*1*101", "GE*1*102"))
    w("err", "0007_missing_se_truncated", env([PO850]).split("CTT")[0])
    x = isa() + "\nGS*PO*A*B*20250101*1200*101*X*004010~\n" + st_se(PO850, "0001", count=7) + "GE*1*101~\nIEA*1*000000101~\n"
    w("err", "0008_se_count_mismatch", x)
    x = isa() + "\nGS*PO*A*B*20250101*1200*101*X*004010~\n" + st_se(PO850, "0001", se_ctl="0002") + "GE*1*101~\nIEA*1*000000101~\n"
    w("err", "0009_se_control_mismatch", x)
    w("err", "0010_segment_outside_set", env([PO850, PO850]).replace("SE*13*0001~\n", "SE*13*0001~\nREF*ZZ*STRAY~\n"))
    w("err", "0011_segment_after_iea", env([PO850]) + "REF*ZZ*AFTER~\nGE*1*1~\n")
    w("err", "0012_bad_delimiters", env([PO850]).replace(isa(), isa().replace(">~", "**")[:-2] + "*~"))
    w("err", "0013_truncated_isa", "ISA*00*          *00*          *ZZ*INGRAMMICRO    *ZZ*VEN")
    w("err", "0014_no_interchange", "hello world, this is not x12 at all\n")
    w("err", "0015_855_missing_bak", env([["REF*VN*1", "PO1*1*5*EA", "ACK*IA*5*EA"]], gs01="PR").replace("ST*850", "ST*855"))
    w("err", "0016_855_missing_bak03", env([["BAK*00*AC**20250101", "PO1*1*5*EA", "ACK*IA*5*EA"]], gs01="PR"))
    w("err", "0017_856_orphan_hl", env([["BSN*00*A1*20250105", "HL*1**S", "HL*2*1*O", "HL*3*9*I", "SN1**1*EA"]], gs01="SH"))
    w("err", "0018_856_cycle", env([["BSN*00*A1*20250105", "HL*1**S", "HL*2*3*O", "HL*3*2*I", "HL*4*4*I"]], gs01="SH"))
    x = isa() + "\nGS*PO*A*B*20250101*1200*101*X*004010~\n" + st_se(PO850, "0001") + st_se(PO850, "0001") + "GE*2*101~\nIEA*1*000000101~\n"
    w("err", "0019_duplicate_st02", x)
    flat = env([PO850], t="\n", nl="")
    wrapped = "\n".join(flat[i:i + 80] for i in range(0, len(flat), 80))
    w("err", "0020_newline_terminator_wrapped", wrapped)
    w("err", "0021_empty_input", "")
    w("err", "0022_856_duplicate_hl", env([["BSN*00*A1*20250105", "HL*1**S", "HL*2*1*O", "HL*2*1*O"]], gs01="SH"))
    w("err", "0023_st_without_gs", isa() + "\n" + st_se(PO850, "0001") + "IEA*0*000000101~\n")
    w("err", "0024_truncated_mid_segment", env([ACK855], gs01="PR").split("ACK*IR")[0] + "ACK*")
    w("err", "0025_mixed_terminators", env([PO850]).replace("REF*CO*RESELLER-PO-77~", "REF*CO*RESELLER-PO-77$N9*ZZ*X$"))
    w("err", "0026_ge_without_gs", env([PO850]).replace("GE*1*101~\n", "GE*1*101~\nGE*1*101~\n"))
    w("err", "0027_se01_not_numeric", env([PO850]).replace("SE*13*0001", "SE*X*0001"))
    w("err", "0028_bare_segments_garbage_id", st_se(["BEG*00*SA*1**20250101", "B@D*1", "CTT*0"], "0001"))
    real_world_err_cases()


# Issue 13, "what real partners send": one case per class, written here (no partner's file).
ACK855_RICH = [
    "BAK*00*AC*IM-7001*20260110*R1*REQ-44*CT-900*SO-5501*20260111*CJ",
    "CUR*SE*USD",
    "PER*OC*PAT SELLER*TE*5550102030*EM*PAT@VENDOR.EXAMPLE",
    "TD5*O*2*UPSN*U*UPS GROUND",
    "N9*ZZ*TERMS",
    "MSG*NET 30 FROM INVOICE",
    "N1*ST*RESELLER DOCK*92*RS-1",
    "N4*AUSTIN*TX*78701*US",
    "PO1*1*10*EA*19.50*PE*VP*VX-100*BP*IMSKU1",
    "N1*ST*DROP SHIP SITE*92*DS-9",
    "N4*DENVER*CO*80202*US",
    "ACK*IA*6*EA*068*20260115*REQ-44-1",
    "ACK*IB*4*EA*068*20260201",
    "SCH*6*EA***068*20260115",
    "SCH*4*EA***068*20260201*1200*069*20260203",
    "PO1*2*3*EA*5.00*PE*VP*VX-200*BP*IMSKU2",
    "ACK*IR*3*EA**************************CW",
    "CTT*2*13",
    "AMT*TT*210.00",
]

ASN856_RICH = [
    "BSN*00*SHIP-9001*20260120*1015*0001",
    "DTM*011*20260120",
    "HL*1**S*1",
    "TD1*CTN25*2****G*30.5*LB*4.2*CF",
    "TD5*B*2*FDEG*U*FEDEX GROUND*CC*ZZ*DOCK7*O*AD*2*G2*SD*ND*US",
    "TD3*TL*ABCD*123456****SEAL778",
    "FOB*PP*OR*ORIGIN",
    "REF*BM*BOL-5",
    "N1*SF*VENDOR DC*92*DC-1",
    "N4*RENO*NV*89501*US",
    "N1*ST*RESELLER DOCK*92*RS-1",
    "N4*AUSTIN*TX*78701*US",
    "HL*2*1*O*1",
    "PRF*IM-7002***20260110",
    "N1*BY*INGRAM MICRO*92*IM-40",
    "N4*MISSISSAUGA*ON*L5T 2J3*CA",
    "HL*3*2*P*1",
    "MEA*PD*WT*12.5*LB",
    "MAN*GM*00012345600000000018",
    "HL*4*3*I*0",
    "LIN*1*VP*VX-100*BP*IMSKU1",
    "SN1*1*2*EA**2*EA**AC",
    "PO4*1*1*EA*CTN*G*6.25*LB",
    "PID*F*08***WIDGET SWITCH",
    "CLD*1*2*CTN",
    "CTT*4*2",
]

ASN856_BLANK_HL02 = [
    "BSN*00*SHIP-9002*20260121*0900*0004",
    "HL*1**S",
    "TD5*B*2*UPSN",
    "HL*2**O",
    "PRF*IM-7003",
    "HL*3**I",
    "LIN*1*VP*VX-100",
    "SN1*1*5*EA",
    "HL*4**O",
    "PRF*IM-7004",
    "HL*5**I",
    "LIN*2*VP*VX-200",
    "SN1*2*1*EA",
]


def real_world_ok_cases():
    w("ok", "0044_855_rich", env([ACK855_RICH], gs01="PR"))
    w("ok", "0045_856_rich", env([ASN856_RICH], gs01="SH"))
    w("ok", "0046_856_blank_hl02_inferred", env([ASN856_BLANK_HL02], gs01="SH"))
    ta1 = isa(ctrl=502) + "\nTA1*000000101*260105*1200*R*022~\nIEA*0*000000502~\n"
    w("ok", "0047_ta1_rejected", ta1)
    two = st_se(ACK855_RICH, "0001", ident="855") + st_se(ASN856_BLANK_HL02, "0001", ident="856")
    w("ok", "0048_bare_two_sets_same_st02", two)
    w("ok", "0049_bare_pipe_newline", st_se(["BAK*00*AC*IM-7005*20260110", "PO1*1*2*EA", "ACK*IA*2*EA"], "0007", e="|", t="\n", nl="", ident="855"))
    w("ok", "0050_duplicate_isa13", env([ACK855_RICH], gs01="PR", ctrl=77) + env([ACK855_RICH], gs01="PR", ctrl=77, gsctl=78))
    x = env([ACK855_RICH], gs01="PR", ctrl=80)
    gs = "GS*PR*INGRAMMICRO*VENDORERP*20250101*1200*80*X*004010~\n"
    second = gs + st_se(ACK855_RICH, "0002", ident="855") + "GE*1*80~\n"
    x = x.replace("IEA*1*000000080", second + "IEA*2*000000080")
    w("ok", "0051_duplicate_gs06", x)
    w("ok", "0052_linebreak_inside_note", env([["BEG*00*SA*1**20250101", "N9*ZZ*TERMS", "MSG*TERMS &\nCONDITIONS APPLY", "PO1*1*5*EA", "CTT*1"]]))
    w("ok", "0053_standard_segments_known", env([["BEG*00*SA*1**20250101", "TAX*EX-1", "PO1*1*5*EA", "SI*ZZ*AB*XYZ", "IT8*N", "CLD*1*5*CTN", "CTT*1"]]))
    w("ok", "0054_997_answers_5010_group", env([ACK855_RICH], gs01="PR", ver="00501", rep="^", gs08="005010"))


def real_world_err_cases():
    w("err", "0029_856_wrong_se01", env([ASN856_RICH], gs01="SH").replace("SE*28*0001", "SE*31*0001"))
    w("err", "0030_wrong_ge01_iea01", env([ACK855_RICH], gs01="PR").replace("GE*1*101", "GE*2*101").replace("IEA*1*", "IEA*3*"))
    w("err", "0031_mangled_isa_sa", env([ACK855_RICH], gs01="PR")[1:])
    w("err", "0032_terminator_changes", env([ACK855_RICH], gs01="PR", t="$").replace("REF", "REF").replace("PO1*2*3*EA*5.00*PE*VP*VX-200*BP*IMSKU2$", "PO1*2*3*EA*5.00*PE*VP*VX-200*BP*IMSKU2~"))
    w("err", "0033_856_orphan_blank_hl02", env([["BSN*00*SHIP-9003*20260121", "HL*1**O", "PRF*IM-7006", "HL*2*1*I", "SN1*1*1*EA"]], gs01="SH"))
    w("err", "0034_bare_wrong_se01", st_se(["BAK*00*AC*IM-7007*20260110", "PO1*1*2*EA", "ACK*IA*2*EA"], "0001", ident="855", count=9))


if __name__ == "__main__":
    for d in ("ok", "err"):
        os.makedirs(os.path.join(HERE, d), exist_ok=True)
    ok_cases()
    err_cases()
