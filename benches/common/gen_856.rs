//! The generated 856 interchange both benchmarks parse (`benches/x12.rs` against memchr and
//! `edi::parse`, `benches/pipeline.rs` against pyx12 and for memory): thousands of sets, each a
//! deep S/O/P/I hierarchy with serial numbers, so the numbers of the two benches describe the
//! same bytes.

/// One interchange of 856s, about `target` bytes.
pub fn gen_856(target: usize) -> Vec<u8> {
    let mut s = String::with_capacity(target + 4096);
    s.push_str("ISA*00*          *00*          *ZZ*VENDORERP      *ZZ*INGRAMMICRO    *250101*1200*U*00401*000000001*0*P*>~\n");
    s.push_str("GS*SH*VENDORERP*INGRAMMICRO*20250101*1200*1*X*004010~\n");
    let mut sets = 0;
    while s.len() < target {
        sets += 1;
        let mut segs = 0;
        let mut push = |s: &mut String, seg: String| {
            s.push_str(&seg);
            s.push_str("~\n");
            segs += 1;
        };
        push(&mut s, format!("ST*856*{sets:04}"));
        push(&mut s, format!("BSN*00*ASN{sets:08}*20250105*1430*0001"));
        push(&mut s, "DTM*011*20250105".into());
        let mut hl = 1;
        push(&mut s, "HL*1**S".into());
        push(&mut s, "TD1*CTN25*20****G*125.5*LB".into());
        push(&mut s, "TD5*B*2*UPSN*U*UPS GROUND".into());
        push(&mut s, format!("REF*BM*BOL{sets:08}"));
        push(&mut s, "N1*SF*VENDOR WAREHOUSE*92*WH1".into());
        for o in 0..5 {
            hl += 1;
            let oid = hl;
            push(&mut s, format!("HL*{oid}*1*O"));
            push(&mut s, format!("PRF*45{sets:06}{o:02}***20250101"));
            for p in 0..4 {
                hl += 1;
                let pid = hl;
                push(&mut s, format!("HL*{pid}*{oid}*P"));
                push(
                    &mut s,
                    format!("MAN*GM*000123456789{sets:06}{p:02}*CP*1Z999AA1{sets:08}"),
                );
                for i in 0..5 {
                    hl += 1;
                    push(&mut s, format!("HL*{hl}*{pid}*I"));
                    push(
                        &mut s,
                        format!("LIN*{i}*VP*ABC-{i}23*BP*1A2B3C*UP*012345678905"),
                    );
                    push(&mut s, format!("SN1*{i}*3*EA**5*EA**AC"));
                    push(&mut s, "PID*F****WIDGET 24 PORT SWITCH".into());
                    push(&mut s, format!("REF*SE*SER{sets:06}{hl:04}A"));
                    push(&mut s, format!("REF*SE*SER{sets:06}{hl:04}B"));
                }
            }
        }
        push(&mut s, format!("CTT*{hl}"));
        let n = segs + 1;
        s.push_str(&format!("SE*{n}*{sets:04}~\n"));
    }
    s.push_str(&format!("GE*{sets}*1~\nIEA*1*000000001~\n"));
    s.into_bytes()
}
