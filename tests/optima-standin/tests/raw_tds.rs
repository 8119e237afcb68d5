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

fn all_headers() -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&22u32.to_le_bytes());
    p.extend_from_slice(&18u32.to_le_bytes());
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&1u32.to_le_bytes());
    p
}

fn b_varchar(s: &str) -> Vec<u8> {
    let mut v = vec![s.encode_utf16().count() as u8];
    v.extend(utf16(s));
    v
}

const POLISH_CI_AS: [u8; 5] = [0x15, 0x04, 0xD0, 0x00, 0x00];

fn p_nvarchar(name: &str, s: &str) -> Vec<u8> {
    let mut v = b_varchar(name);
    v.push(0);
    v.push(0xE7);
    v.extend_from_slice(&8000u16.to_le_bytes());
    v.extend_from_slice(&POLISH_CI_AS);
    let b = utf16(s);
    v.extend_from_slice(&(b.len() as u16).to_le_bytes());
    v.extend(b);
    v
}

fn p_varchar(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut v = b_varchar(name);
    v.push(0);
    v.push(0xA7);
    v.extend_from_slice(&8000u16.to_le_bytes());
    v.extend_from_slice(&POLISH_CI_AS);
    v.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    v.extend_from_slice(bytes);
    v
}

fn p_int(name: &str, value: Option<i32>, output: bool) -> Vec<u8> {
    let mut v = b_varchar(name);
    v.push(output as u8);
    v.extend_from_slice(&[0x26, 4]);
    match value {
        Some(i) => {
            v.push(4);
            v.extend_from_slice(&i.to_le_bytes());
        }
        None => v.push(0),
    }
    v
}

fn rpc(proc_id: u16, params: &[Vec<u8>]) -> Vec<u8> {
    let mut p = all_headers();
    p.extend_from_slice(&0xFFFFu16.to_le_bytes());
    p.extend_from_slice(&proc_id.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    for x in params {
        p.extend_from_slice(x);
    }
    p
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn raw_session() -> (optima_standin::erp::Erp, Option<TcpStream>) {
    let erp = optima_standin::erp::erp_for_tests(SeedOptions {
        products: 20,
        seed: 1,
    })
    .await
    .unwrap();
    let Some(server) = erp.standin.as_ref() else {
        return (erp, None);
    };
    let password = erp
        .ado
        .split(';')
        .find_map(|kv| kv.strip_prefix("password="))
        .unwrap()
        .to_string();
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    let mut pre = vec![0u8, 0, 11, 0, 6, 1, 0, 17, 0, 1, 0xFF];
    pre.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x02]);
    send(&mut s, 0x12, &pre).await;
    recv(&mut s).await;
    send(&mut s, 0x10, &login7("sa", &password)).await;
    let login = recv(&mut s).await;
    assert_eq!(final_done_status(&login) & 0x02, 0);
    (erp, Some(s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_with_varchar_parameters_and_prepared_statements() {
    let (_erp, s) = raw_session().await;
    let Some(mut s) = s else { return };
    // sp_executesql with a varchar parameter in code page 1250 ("Łódź").
    let lodz_cp1250 = [0xA3, 0xF3, 0x64, 0x9F];
    send(
        &mut s,
        0x03,
        &rpc(
            10,
            &[
                p_nvarchar("@stmt", "SELECT @P1 AS s, LEN(@P1) AS n, @P2 + 1 AS i"),
                p_nvarchar("@params", "@P1 varchar(20), @P2 int"),
                p_varchar("@P1", &lodz_cp1250),
                p_int("@P2", Some(41), false),
            ],
        ),
    )
    .await;
    let msg = recv(&mut s).await;
    let last = &msg[msg.len() - 13..];
    assert_eq!(last[0], 0xFE, "DONEPROC");
    assert_eq!(u16::from_le_bytes([last[1], last[2]]) & 0x02, 0, "no error");
    let row = find(&msg, &[0xD1]).expect("a ROW");
    assert!(
        find(&msg[row..], &[4, 0, 0xA3, 0xF3, 0x64, 0x9F]).is_some(),
        "varchar comes back in cp1250"
    );
    assert!(
        find(&msg[row..], &[4, 4, 0, 0, 0, 4, 42, 0, 0, 0]).is_some(),
        "LEN 4 and 42 as int"
    );

    // sp_prepexec returns a handle; sp_execute reuses it.
    send(
        &mut s,
        0x03,
        &rpc(
            13,
            &[
                p_int("@handle", None, true),
                p_nvarchar("@params", "@P1 int"),
                p_nvarchar(
                    "@stmt",
                    "SELECT Twr_TwrId FROM CDN.Towary WHERE Twr_TwrId = @P1",
                ),
                p_int("@P1", Some(3), false),
            ],
        ),
    )
    .await;
    let msg = recv(&mut s).await;
    let at = find(&msg, &[0xAC]).expect("RETURNVALUE");
    let name = b_varchar("@handle");
    assert_eq!(&msg[at + 3..at + 3 + name.len()], &name[..]);
    let v = at + 3 + name.len() + 1 + 4 + 2 + 3;
    let handle = i32::from_le_bytes(msg[v..v + 4].try_into().unwrap());
    assert!(
        find(&msg, &[0xD1, 4, 3, 0, 0, 0]).is_some(),
        "row with id 3"
    );
    send(
        &mut s,
        0x03,
        &rpc(
            12,
            &[
                p_int("@handle", Some(handle), false),
                p_int("@P1", Some(5), false),
            ],
        ),
    )
    .await;
    let msg = recv(&mut s).await;
    assert!(
        find(&msg, &[0xD1, 4, 5, 0, 0, 0]).is_some(),
        "row with id 5"
    );
    // An unknown handle is an error, not a crash.
    send(
        &mut s,
        0x03,
        &rpc(12, &[p_int("@handle", Some(999), false)]),
    )
    .await;
    let msg = recv(&mut s).await;
    assert!(find(&msg, &[0xAA]).is_some(), "ERROR token");
}
