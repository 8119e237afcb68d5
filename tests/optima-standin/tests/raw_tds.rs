//! A hand-written TDS client (not tiberius): PRELOGIN, LOGIN7, a SQL batch
//! and an ATTENTION that cancels a long query.

use std::time::{Duration, Instant};

use optima_standin::seed::SeedOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn send(s: &mut TcpStream, ty: u8, payload: &[u8]) {
    let len = (payload.len() + 8) as u16;
    let mut p = vec![ty, 0x01, (len >> 8) as u8, len as u8, 0, 0, 1, 0];
    p.extend_from_slice(payload);
    s.write_all(&p).await.unwrap();
}

/// Reads one message (packets up to END OF MESSAGE).
async fn recv(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut h = [0u8; 8];
        s.read_exact(&mut h).await.unwrap();
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        let mut b = vec![0u8; len - 8];
        s.read_exact(&mut b).await.unwrap();
        out.extend_from_slice(&b);
        if h[1] & 1 != 0 {
            return out;
        }
    }
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn login7(user: &str, password: &str) -> Vec<u8> {
    let fields: [Vec<u8>; 9] = [
        utf16("raw-client"),
        utf16(user),
        password
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .map(|b| b.rotate_left(4) ^ 0xA5)
            .collect(),
        utf16("raw-test"),
        utf16("127.0.0.1"),
        vec![],
        utf16("raw"),
        vec![],
        utf16("CDN_Firma"),
    ];
    let mut fixed = Vec::new();
    fixed.extend_from_slice(&0u32.to_le_bytes()); // length, patched below
    fixed.extend_from_slice(&0x7400_0004u32.to_le_bytes());
    fixed.extend_from_slice(&4096u32.to_le_bytes());
    fixed.extend_from_slice(&[0; 12]); // prog version, pid, connection id
    fixed.extend_from_slice(&[0xE0, 0x03, 0, 0]); // option flags
    fixed.extend_from_slice(&[0; 8]); // time zone, lcid
    let mut offset = 94u16;
    let mut data = Vec::new();
    for f in &fields {
        fixed.extend_from_slice(&offset.to_le_bytes());
        fixed.extend_from_slice(&((f.len() / 2) as u16).to_le_bytes());
        offset += f.len() as u16;
        data.extend_from_slice(f);
    }
    fixed.extend_from_slice(&[0; 6]); // client id
    fixed.extend_from_slice(&offset.to_le_bytes()); // SSPI
    fixed.extend_from_slice(&0u16.to_le_bytes());
    fixed.extend_from_slice(&offset.to_le_bytes()); // attach db file
    fixed.extend_from_slice(&0u16.to_le_bytes());
    fixed.extend_from_slice(&offset.to_le_bytes()); // change password
    fixed.extend_from_slice(&0u16.to_le_bytes());
    fixed.extend_from_slice(&0u32.to_le_bytes()); // long SSPI
    assert_eq!(fixed.len(), 94);
    fixed.extend_from_slice(&data);
    let len = fixed.len() as u32;
    fixed[..4].copy_from_slice(&len.to_le_bytes());
    fixed
}

fn batch(sql: &str) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&22u32.to_le_bytes());
    p.extend_from_slice(&18u32.to_le_bytes());
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&utf16(sql));
    p
}

/// The status of the DONE token that ends a message.
fn final_done_status(msg: &[u8]) -> u16 {
    assert!(msg.len() >= 13);
    let d = &msg[msg.len() - 13..];
    assert_eq!(d[0], 0xFD, "message ends with DONE");
    u16::from_le_bytes([d[1], d[2]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attention_cancels_a_running_query() {
    let erp = optima_standin::erp::erp_for_tests(SeedOptions {
        products: 20,
        seed: 1,
    })
    .await
    .unwrap();
    let Some(server) = erp.standin.as_ref() else {
        return; // a real SQL Server: this test drives the stand-in's socket
    };
    let password = erp
        .ado
        .split(';')
        .find_map(|kv| kv.strip_prefix("password="))
        .unwrap()
        .to_string();
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    // PRELOGIN: version and "encryption not supported".
    let mut pre = vec![0u8, 0, 11, 0, 6, 1, 0, 17, 0, 1, 0xFF];
    pre.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x02]);
    send(&mut s, 0x12, &pre).await;
    let reply = recv(&mut s).await;
    assert!(reply.contains(&0xFF));
    send(&mut s, 0x10, &login7("sa", &password)).await;
    let login = recv(&mut s).await;
    assert!(login.contains(&0xAD), "LOGINACK");
    assert_eq!(final_done_status(&login) & 0x02, 0);

    // The query is valid (small bound): a row, no error.
    let cte = |n: u64| {
        format!(
            "WITH r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < {n}) SELECT COUNT(*) FROM r"
        )
    };
    send(&mut s, 0x01, &batch(&cte(1000))).await;
    let msg = recv(&mut s).await;
    assert_eq!(final_done_status(&msg), 0x10, "DONE with a count, no error");
    assert_eq!(
        u64::from_le_bytes(msg[msg.len() - 8..].try_into().unwrap()),
        1
    );

    // The same query running for a long time, then ATTENTION.
    let started = Instant::now();
    send(&mut s, 0x01, &batch(&cte(1_000_000_000))).await;
    send(&mut s, 0x06, &[]).await;
    let mut acked = false;
    for _ in 0..3 {
        let msg = tokio::time::timeout(Duration::from_secs(20), recv(&mut s))
            .await
            .unwrap();
        if final_done_status(&msg) & 0x20 != 0 {
            acked = true;
            break;
        }
    }
    assert!(acked, "DONE with the ATTN bit");
    assert!(started.elapsed() < Duration::from_secs(15));

    // Transaction manager requests: begin (ENVCHANGE 8), commit (ENVCHANGE 9).
    let tm = |req: u16| {
        let mut p = Vec::new();
        p.extend_from_slice(&22u32.to_le_bytes());
        p.extend_from_slice(&18u32.to_le_bytes());
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&1u32.to_le_bytes());
        p.extend_from_slice(&req.to_le_bytes());
        if req == 5 {
            p.push(0); // isolation level unchanged
        }
        p.push(0); // no name
        if req == 7 {
            p.push(0); // flags
        }
        p
    };
    send(&mut s, 0x0E, &tm(5)).await;
    let msg = recv(&mut s).await;
    assert_eq!(&msg[..4], &[0xE3, 11, 0, 8], "ENVCHANGE begin transaction");
    assert_eq!(final_done_status(&msg) & 0x02, 0);
    send(&mut s, 0x0E, &tm(7)).await;
    let msg = recv(&mut s).await;
    assert_eq!(&msg[..4], &[0xE3, 11, 0, 9], "ENVCHANGE commit transaction");

    // The connection is still usable.
    send(&mut s, 0x01, &batch("SELECT COUNT(*) FROM CDN.Towary")).await;
    let msg = recv(&mut s).await;
    assert!(msg.contains(&0xD1), "a ROW");
    assert_eq!(final_done_status(&msg) & 0x22, 0x00);
}
