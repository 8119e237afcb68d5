//! Shop → ERP → shop on every real piece: an order placed in the WooCommerce
//! stand-in reaches the webhook, becomes a command, and the agent writes it
//! into the Optima stand-in as an RO with the right customer, addresses,
//! lines, prices, VAT and totals; the office realises it with the simulator
//! and the shop shows the order completed with its tracking number. The
//! agent's acknowledgement lands on the stored order with the document's
//! number; an order with a SKU Optima does not have is parked (listed on
//! `/status`, nothing written) and the order placed after it still goes in.

use std::time::{Duration, Instant};

use anyhow::Context;
use harness::cloud::{LocalCloud, start_agent};
use harness::emulator::sdk_config;
use harness::standins::{OptimaStandin, WooStandinProcess};
use harness::wait_for;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tiberius::Query;

pub const ORDERS_TOML: &str = "\n[sync]\npoll_seconds = 1\noverlap_seconds = 5\nstock_minutes = 600\nprices_minutes = 600\ncatalogue_minutes = 1440\nbatch_records = 500\n\n[orders]\nwarehouse = \"MAG\"\ndefault_payment_form = \"przelew\"\ndefault_shipping_service = \"TRANSPORT\"\nprogress_seconds = 1\ncommand_visibility_seconds = 10\n\n[orders.payment_forms]\nbacs = \"przelew\"\ncod = \"pobranie\"\n\n[orders.fee_services]\nPobranie = \"TRANSPORT\"\n";

/// The documents in Optima that carry shop order `number` (`TrN_NumerObcy`)
/// or the agent's key for shop order `order_id` (`TrN_ImportRowId`):
/// `(TrN_TrNID, TrN_NumerPelny)`, read over TDS like any client.
async fn documents_for(
    erp: &OptimaStandin,
    number: &str,
    order_id: u64,
) -> anyhow::Result<Vec<(i32, String)>> {
    let key = agent::optima::order_document::import_row_id(&format!("sklep:{order_id}"));
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let mut found = Vec::new();
    for (query, value) in [
        (
            "SELECT TrN_TrNID, TrN_NumerPelny FROM CDN.TraNag WHERE TrN_NumerObcy = CAST(@P1 AS varchar(256))",
            number.to_owned(),
        ),
        (
            "SELECT TrN_TrNID, TrN_NumerPelny FROM CDN.TraNag WHERE TrN_ImportRowId = CAST(@P1 AS varchar(36))",
            key,
        ),
    ] {
        let mut query = Query::new(query);
        query.bind(value);
        for row in query.query(&mut sql).await?.into_first_result().await? {
            let doc = (
                row.get::<i32, _>("TrN_TrNID").unwrap_or_default(),
                row.get::<&str, _>("TrN_NumerPelny")
                    .unwrap_or_default()
                    .to_owned(),
            );
            if !found.contains(&doc) {
                found.push(doc);
            }
        }
    }
    Ok(found)
}

/// A complete Polish address (so nothing but the SKU can park an order).
fn address(email: &str) -> Value {
    json!({"first_name": "Anna", "last_name": "Nowak", "address_1": "ul. Lipowa 7",
           "city": "Poznań", "postcode": "60-001", "country": "PL", "email": email})
}

/// The whole sync on real pieces: the Optima stand-in, the WooCommerce
/// stand-in with order webhooks, the cloud (poller every 5 s) and an agent
/// that writes orders.
struct Running {
    erp: OptimaStandin,
    all_skus: Vec<String>,
    skus: Vec<String>,
    shop: WooStandinProcess,
    cloud: LocalCloud,
    _agent: harness::process::Process,
}

impl Running {
    async fn start(dir: &std::path::Path, stack: &str) -> anyhow::Result<Running> {
        let erp = OptimaStandin::start(&dir.join("optima.sqlite"), 100, dir)?;
        let all_skus = erp.skus().await?;
        let skus = erp.stocked_skus().await?;
        let shop = WooStandinProcess::start_with(None, Some(&all_skus), None, dir)?;
        let cloud = LocalCloud::start_with_host_args(
            dir,
            stack,
            Some(shop.shop_parameters("sklep", "Detaliczna", &["MAG"], 20, 20)),
            &["--schedule-every", "poller=5"],
        )?;
        let webhook = cloud.webhook_url.clone().context("no webhook URL")?;
        shop.register_order_webhooks(&format!("{webhook}/sklep"))
            .await?;
        let config = dir.join("agent.toml");
        cloud.write_agent_config_with(&config, "biuro", &erp.connection_string, 30, ORDERS_TOML)?;
        let _agent = start_agent(
            &config,
            &cloud.emulator.endpoint(),
            &dir.join("agent.log"),
            &[("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())],
        )?;
        Ok(Running {
            erp,
            all_skus,
            skus,
            shop,
            cloud,
            _agent,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_order_becomes_an_ro_and_its_shipping_comes_back() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path().to_path_buf();
    let Running {
        erp,
        all_skus,
        skus,
        shop,
        cloud,
        _agent,
    } = Running::start(&dir, "orders-e2e").await?;

    let placed = Instant::now();
    let order = shop
        .place_order(json!({
            "line_items": [[skus[0], 3], [skus[1], 1]],
            "billing": {"first_name": "Żaneta", "last_name": "Gęślarska", "company": "Źdźbło Sp. z o.o.",
                        "address_1": "ul. Świętego Wojciecha 12", "city": "Łódź", "postcode": "90-001",
                        "country": "PL", "email": "zaneta@example.pl", "phone": "+48 600 700 800"},
            "shipping": {"first_name": "Jerzy", "last_name": "Kowalczyk", "address_1": "ul. Polna 3",
                         "city": "Gdańsk", "postcode": "80-001", "country": "PL"},
            "payment_method": "bacs",
            "shipping_total": "15.00",
            "status": "processing"
        }))
        .await?;
    let order_id = order["id"].as_u64().context("order id")?;
    let number = order["number"].as_str().context("order number")?.to_owned();
    let total: Decimal = order["total"].as_str().context("total")?.parse()?;
    let total_tax: Decimal = order["total_tax"].as_str().context("total_tax")?.parse()?;

    // The RO appears in Optima.
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let header = wait_for("the RO in Optima", Duration::from_secs(60), || {
        let number = number.clone();
        let ado = erp.ado_with_password();
        async move {
            let mut sql = optima_standin::erp::connect(&ado).await?;
            let mut query = Query::new(
                "SELECT n.TrN_TrNID, n.TrN_NumerPelny, n.TrN_Bufor, n.TrN_RazemBrutto, n.TrN_RazemVAT, n.TrN_OdbMiasto, n.TrN_OdbNazwa1, \
                 k.Knt_Nazwa1, k.Knt_Nazwa2, k.Knt_Miasto, k.Knt_Email FROM CDN.TraNag n JOIN CDN.Kontrahenci k ON k.Knt_KntId = n.TrN_PodID \
                 WHERE n.TrN_NumerObcy = CAST(@P1 AS varchar(256))",
            );
            query.bind(number.as_str());
            let rows = query.query(&mut sql).await?.into_first_result().await?;
            Ok(rows.first().map(|r| {
                (
                    r.get::<i32, _>("TrN_TrNID").unwrap_or_default(),
                    r.get::<&str, _>("TrN_NumerPelny").unwrap_or_default().to_owned(),
                    r.get::<i16, _>("TrN_Bufor"),
                    r.get::<Decimal, _>("TrN_RazemBrutto"),
                    r.get::<Decimal, _>("TrN_RazemVAT"),
                    r.get::<&str, _>("TrN_OdbMiasto").map(str::to_owned),
                    r.get::<&str, _>("Knt_Nazwa1").map(str::to_owned),
                    r.get::<&str, _>("Knt_Nazwa2").map(str::to_owned),
                    r.get::<&str, _>("Knt_Miasto").map(str::to_owned),
                )
            }))
        }
    })
    .await?;
    println!(
        "shop order {number} → Optima {} after {:?}",
        header.1,
        placed.elapsed()
    );
    let (ro_id, ro_number, bufor, gross, vat, odb_city, name1, name2, city) = header;
    assert!(ro_number.starts_with("RO/"), "{ro_number}");
    assert_eq!(bufor, Some(1), "written to the buffer");
    assert_eq!(
        gross,
        Some(total),
        "gross equals the shop's total to the grosz"
    );
    assert_eq!(vat, Some(total_tax), "VAT equals the shop's tax");
    assert_eq!(
        odb_city.as_deref(),
        Some("Gdańsk"),
        "recipient = shipping address"
    );
    assert_eq!(
        name1.as_deref(),
        Some("Źdźbło Sp. z o.o."),
        "company as the customer"
    );
    assert_eq!(name2.as_deref(), Some("Żaneta Gęślarska"));
    assert_eq!(city.as_deref(), Some("Łódź"));

    let mut query = Query::new(
        "SELECT TrE_TwrKod, TrE_Ilosc, TrE_WartoscBrutto FROM CDN.TraElem WHERE TrE_TrNId = @P1 ORDER BY TrE_Lp",
    );
    query.bind(ro_id);
    let lines = query.query(&mut sql).await?.into_first_result().await?;
    let codes: Vec<(String, Decimal)> = lines
        .iter()
        .filter_map(|r| {
            Some((
                r.get::<&str, _>("TrE_TwrKod")?.to_owned(),
                r.get::<Decimal, _>("TrE_Ilosc")?,
            ))
        })
        .collect();
    assert_eq!(
        codes,
        [
            (skus[0].clone(), Decimal::from(3)),
            (skus[1].clone(), Decimal::from(1)),
            ("TRANSPORT".to_owned(), Decimal::ONE)
        ]
    );
    let shop_lines: Vec<Decimal> = order["line_items"]
        .as_array()
        .context("line_items")?
        .iter()
        .map(|l| -> anyhow::Result<Decimal> {
            let total: Decimal = l["total"].as_str().context("total")?.parse()?;
            let tax: Decimal = l["total_tax"].as_str().context("total_tax")?.parse()?;
            Ok(total + tax)
        })
        .collect::<anyhow::Result<_>>()?;
    let erp_lines: Vec<Decimal> = lines
        .iter()
        .take(2)
        .filter_map(|r| r.get::<Decimal, _>("TrE_WartoscBrutto"))
        .collect();
    assert_eq!(
        erp_lines, shop_lines,
        "line gross values as the shop priced them"
    );

    // The agent's acknowledgement: the stored order in the cloud carries
    // the document the agent wrote, as Optima numbers it.
    let aws = sdk_config(&cloud.emulator.endpoint()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let table = cloud.stack.output("StateTableName")?.to_owned();
    let store = functions::orders::OrderStore::new(dynamodb.clone(), &table, 30);
    let acked = wait_for(
        "the agent's acknowledgement on the stored order",
        Duration::from_secs(30),
        || async {
            let stored = store
                .get("sklep", &order_id.to_string())
                .await?
                .context("the order is stored in the cloud")?;
            Ok(stored.erp_document_number.clone().map(|n| (n, stored)))
        },
    )
    .await?;
    println!(
        "acknowledged in the cloud after {:?}: {}",
        placed.elapsed(),
        acked.0
    );
    assert_eq!(
        acked.0, ro_number,
        "the stored order carries the RO's TrN_NumerPelny"
    );
    assert_eq!(acked.1.parked_reason, None, "a written order is not parked");
    let item = dynamodb
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("order#sklep".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(order_id.to_string()),
        )
        .send()
        .await?
        .item
        .context("the raw order item")?;
    let acked_id: i64 = item
        .get("erp_document_id")
        .and_then(|v| v.as_n().ok())
        .context("erp_document_id on the order item")?
        .parse()?;
    assert_eq!(acked_id, i64::from(ro_id), "the RO's TrN_TrNID");

    // Before the office realises it, /status lists it with seed 004's
    // checks: paid by transfer ("processing"), the goods in stock, no
    // remark from the buyer: ready.
    let listed = wait_for(
        "the order awaiting realisation on /status",
        Duration::from_secs(30),
        || async {
            let status = cloud.status().await?;
            Ok(status["awaiting_realisation"].as_array().and_then(|all| {
                all.iter()
                    .find(|o| o["order_id"] == order_id.to_string().as_str())
                    .cloned()
            }))
        },
    )
    .await?;
    assert_eq!(listed["document"], ro_number.as_str(), "{listed}");
    assert_eq!(listed["ready"], true, "{listed}");

    // The warehouse realises the reservation with a tracking number.
    let realised = Instant::now();
    erp.perform(optima_standin::simulator::Action::Realise {
        ro_id: i64::from(ro_id),
        tracking: "PL7777000111".into(),
    })
    .await?;
    let (tracking_notes, notes) =
        completed_with_tracking(&shop, order_id, "PL7777000111", Duration::from_secs(60)).await?;
    println!(
        "realised in Optima → shop completed with tracking after {:?}",
        realised.elapsed()
    );
    assert_eq!(tracking_notes.len(), 1, "one tracking note: {notes:?}");
    let status = cloud.status().await?;
    assert!(
        !status["awaiting_realisation"]
            .to_string()
            .contains(&ro_number),
        "a realised order is off the list: {status}"
    );
    assert_eq!(
        tracking_notes[0]["customer_note"], true,
        "the customer sees it: {notes:?}"
    );

    // The invoice Optima made reaches the buyer: a customer note with a
    // link to its PDF, first "awaiting KSeF", then, once Optima records the
    // KSeF number, the same link shows it; one note in all.
    let (fs_id, fs_number) = documents_for(&erp, &number, order_id)
        .await?
        .into_iter()
        .find(|(_, n)| n.starts_with("FS/"))
        .context("the FS the RO was realised into")?;
    let link = wait_for(
        "the invoice link in a customer note",
        Duration::from_secs(60),
        || async {
            let order = shop.order(order_id).await?;
            let notes = order["notes"].as_array().cloned().unwrap_or_default();
            Ok(notes.iter().find_map(|n| {
                let text = n["note"].as_str()?;
                let at = text.find("http")?;
                let link: String = text[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                (link.contains("/invoice/") && n["customer_note"] == true).then_some(link)
            }))
        },
    )
    .await?;
    let http = reqwest::Client::new();
    let pdf_text = async |link: &str| -> anyhow::Result<String> {
        let answer = http.get(link).send().await?.error_for_status()?;
        anyhow::ensure!(
            answer
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                == Some("application/pdf"),
            "{:?}",
            answer.headers()
        );
        harness::pdf::text(&answer.bytes().await?)
    };
    let first = pdf_text(&link).await?;
    for expected in [
        fs_number.as_str(),
        "oczekuje na nadanie",
        "Palarnia Kawy Wiśniewski sp. z o.o.",
        "NIP: 7251801126",
    ] {
        assert!(
            first.contains(expected),
            "the buyer's copy lacks {expected:?}:\n{first}"
        );
    }
    let ksef = "7251801126-20261207-0A1B2C3D4E5F-60";
    erp.perform(optima_standin::simulator::Action::KsefAccepted {
        document_id: i64::from(fs_id),
        ksef_number: ksef.into(),
    })
    .await?;
    let second = wait_for(
        "the KSeF number on the buyer's copy",
        Duration::from_secs(60),
        || async {
            let text = pdf_text(&link).await?;
            Ok(text.contains(ksef).then_some(text))
        },
    )
    .await?;
    assert!(!second.contains("oczekuje na nadanie"), "{second}");
    let last = if link.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("{}{last}", &link[..link.len() - 1]);
    assert_eq!(http.get(&forged).send().await?.status(), 404, "{forged}");
    let notes = shop.order(order_id).await?["notes"].to_string();
    assert_eq!(
        notes.matches("/invoice/").count(),
        1,
        "one invoice note: {notes}"
    );

    // The buyer sends one of the three back and the shop's staff refund it
    // in WooCommerce: /status lists the return as needing a correction in
    // Optima, with the SKU and quantity. The office books the correction
    // against the FS; its copy reaches the buyer under a link of its own,
    // and the return shows as corrected.
    let now = shop.order(order_id).await?;
    let line = now["order"]["line_items"]
        .as_array()
        .and_then(|lines| lines.iter().find(|l| l["sku"] == skus[0].as_str()))
        .context("the order's line of the first SKU")?;
    let line_id = line["id"].as_u64().context("line id")?;
    let line_gross: Decimal = line["total"]
        .as_str()
        .context("total")?
        .parse::<Decimal>()?
        + line["total_tax"]
            .as_str()
            .context("total_tax")?
            .parse::<Decimal>()?;
    let one = (line_gross / Decimal::from(3)).round_dp(2).to_string();
    let refund = shop
        .refund(
            order_id,
            &one,
            "Zwrot 1 szt.",
            &[(line_id, 1, one.as_str())],
        )
        .await?;
    let refund_id = refund["id"].as_u64().context("refund id")?.to_string();
    let find_return = async || -> anyhow::Result<Option<Value>> {
        let status = cloud.status().await?;
        Ok(status["returns"].as_array().and_then(|listed| {
            listed
                .iter()
                .find(|r| r["id"] == refund_id.as_str())
                .cloned()
        }))
    };
    let listed = wait_for(
        "the refund on /status as a return",
        Duration::from_secs(60),
        || async { find_return().await },
    )
    .await?;
    assert_eq!(
        listed["order_id"],
        order_id.to_string().as_str(),
        "{listed}"
    );
    assert_eq!(listed["items"][0]["sku"], skus[0].as_str(), "{listed}");
    assert_eq!(listed["items"][0]["quantity"], 1, "{listed}");
    assert_eq!(listed["needs"], "a correction in the ERP", "{listed}");
    erp.perform(optima_standin::simulator::Action::CorrectInvoice {
        invoice_id: i64::from(fs_id),
        lines: vec![(skus[0].clone(), Decimal::ONE)],
        reason: "Zwrot towaru".into(),
    })
    .await?;
    let correction_link = wait_for(
        "the correction's link in a customer note",
        Duration::from_secs(90),
        || async {
            let order = shop.order(order_id).await?;
            let notes = order["notes"].as_array().cloned().unwrap_or_default();
            Ok(notes.iter().find_map(|n| {
                let text = n["note"].as_str()?;
                let at = text.find("http")?;
                let found: String = text[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                (found.contains("/invoice/") && found != link).then(|| (text.to_owned(), found))
            }))
        },
    )
    .await?;
    let (correction_note, correction_link) = correction_link;
    assert!(
        correction_note.contains(&format!("(korygująca fakturę {fs_number})")),
        "{correction_note}"
    );
    let correction = pdf_text(&correction_link).await?;
    for expected in [
        "Faktura korygująca FSKOR/",
        fs_number.as_str(),
        "Zwrot towaru",
    ] {
        assert!(
            correction.contains(expected),
            "the correction's copy lacks {expected:?}:\n{correction}"
        );
    }
    let corrected = wait_for(
        "the return shown as corrected on /status",
        Duration::from_secs(30),
        || async {
            Ok(find_return()
                .await?
                .filter(|r| r["corrections"].as_array().is_some_and(|c| !c.is_empty())))
        },
    )
    .await?;
    assert!(
        corrected["corrections"][0]
            .as_str()
            .is_some_and(|n| n.starts_with("FSKOR/")),
        "{corrected}"
    );
    assert_eq!(corrected["needs"], "nothing: corrected in the ERP");

    // A product only the shop has: an order with it is parked whole, and
    // the ordinary order placed right after it still becomes its RO (the
    // parked command does not hold up the shop's queue).
    const SHOP_ONLY: &str = "TYLKO-W-SKLEPIE-1";
    assert!(
        !all_skus.iter().any(|s| s == SHOP_ONLY),
        "{SHOP_ONLY} must not be in Optima"
    );
    reqwest::Client::new()
        .post(format!("{}/__standin/products", shop.base_url))
        .json(
            &json!({"sku": SHOP_ONLY, "name": "Tylko w sklepie", "regular_price": "49.20",
                      "stock_quantity": 50, "manage_stock": true}),
        )
        .send()
        .await?
        .error_for_status()
        .context("adding the shop-only product")?;
    let second = Instant::now();
    let unknown = shop
        .place_order(json!({
            "line_items": [[skus[0], 1], [SHOP_ONLY, 2]],
            "billing": address("parked@example.pl"),
            "shipping": address("parked@example.pl"),
            "payment_method": "bacs",
            "shipping_total": "15.00",
            "status": "processing"
        }))
        .await?;
    let ordinary = shop
        .place_order(json!({
            "line_items": [[skus[1], 1]],
            "billing": address("ordinary@example.pl"),
            "shipping": address("ordinary@example.pl"),
            "payment_method": "bacs",
            "shipping_total": "15.00",
            "status": "processing"
        }))
        .await?;
    let unknown_id = unknown["id"].as_u64().context("order id")?;
    let unknown_number = unknown["number"]
        .as_str()
        .context("order number")?
        .to_owned();
    let ordinary_id = ordinary["id"].as_u64().context("order id")?;
    let ordinary_number = ordinary["number"]
        .as_str()
        .context("order number")?
        .to_owned();

    let parked = wait_for(
        "the order with the shop-only SKU on /status",
        Duration::from_secs(45),
        || async { cloud.parked_order(&unknown_id.to_string()).await },
    )
    .await?;
    println!("parked after {:?}: {parked}", second.elapsed());
    assert_eq!(parked["shop"], "sklep", "{parked}");
    assert_eq!(parked["number"].as_str(), Some(unknown_number.as_str()));
    let reason = parked["reason"].as_str().context("a reason")?;
    assert!(
        reason.contains(SHOP_ONLY),
        "the reason names the SKU: {reason}"
    );
    assert!(
        !reason.contains(skus[0].as_str()),
        "only the unknown SKU is blamed: {reason}"
    );

    let ordinary_docs = wait_for(
        "the ordinary order's RO after the parked one",
        Duration::from_secs(45),
        || async {
            let docs = documents_for(&erp, &ordinary_number, ordinary_id).await?;
            Ok((!docs.is_empty()).then_some(docs))
        },
    )
    .await?;
    println!(
        "the order after the parked one → Optima {:?} after {:?}",
        ordinary_docs,
        second.elapsed()
    );
    assert_eq!(ordinary_docs.len(), 1, "one document: {ordinary_docs:?}");
    assert!(ordinary_docs[0].1.starts_with("RO/"), "{ordinary_docs:?}");
    assert_ne!(ordinary_docs[0].1, ro_number, "a new document");

    // Nothing for the parked order: no document, no acknowledged number,
    // and its command is not left in the commands queue.
    let unknown_docs = documents_for(&erp, &unknown_number, unknown_id).await?;
    assert!(
        unknown_docs.is_empty(),
        "no document for the parked order: {unknown_docs:?}"
    );
    let stored = store
        .get("sklep", &unknown_id.to_string())
        .await?
        .context("the parked order is stored")?;
    assert_eq!(
        stored.erp_document_number, None,
        "the parked order has no RO"
    );
    assert!(
        stored
            .parked_reason
            .as_deref()
            .is_some_and(|r| r.contains(SHOP_ONLY)),
        "the stored order has the reason: {:?}",
        stored.parked_reason
    );
    wait_for(
        "an empty commands queue",
        Duration::from_secs(20),
        || async {
            let status = cloud.status().await?;
            let queue = &status["queues"]["erp_commands"];
            let depth = queue["visible"].as_u64().unwrap_or(1)
                + queue["in_flight"].as_u64().unwrap_or(1)
                + queue["delayed"].as_u64().unwrap_or(1);
            Ok((depth == 0).then_some(()))
        },
    )
    .await?;
    let status = cloud.status().await?;
    assert_eq!(
        status["queues"]["erp_commands_dlq"]["visible"].as_u64(),
        Some(0),
        "nothing in the commands DLQ: {}",
        status["queues"]
    );

    // The office adds the product, and a person sends the parked order
    // again from the office (`agent orders retry`): it becomes its RO, and
    // leaves /status's parked orders.
    erp.perform(optima_standin::simulator::Action::NewProduct {
        sku: SHOP_ONLY.into(),
        name: "Tylko w sklepie, już w Optimie".into(),
    })
    .await?;
    let retried = std::process::Command::new(harness::paths::workspace_bin("agent")?)
        .args(["orders", "retry", "--config"])
        .arg(dir.join("agent.toml"))
        .args(["--order", &format!("sklep:{unknown_id}")])
        .env("OPTIMA_SYNC_SQL__PASSWORD", &erp.password)
        .output()?;
    assert!(
        retried.status.success(),
        "agent orders retry: {}",
        String::from_utf8_lossy(&retried.stderr)
    );
    let written = wait_for(
        "the parked order's RO after the retry",
        Duration::from_secs(60),
        || async {
            let docs = documents_for(&erp, &unknown_number, unknown_id).await?;
            Ok((!docs.is_empty()).then_some(docs))
        },
    )
    .await?;
    assert_eq!(written.len(), 1, "one document: {written:?}");
    wait_for(
        "the order off /status's parked list",
        Duration::from_secs(30),
        || async {
            let listed = cloud.parked_order(&unknown_id.to_string()).await?;
            Ok(listed.is_none().then_some(()))
        },
    )
    .await?;
    // The buyer's data went through the webhook, the queue, the agent and
    // Optima; none of it is in our own processes' logs (GDPR: logs outlive
    // the order's retention). The stand-ins' logs are the shop's and the
    // ERP's, not ours.
    for log in ["agent.log", "functions.log"] {
        let text = std::fs::read_to_string(dir.join(log)).with_context(|| log.to_owned())?;
        anyhow::ensure!(
            text.contains(&number),
            "{log} says nothing of order {number}"
        );
        for personal in [
            "zaneta@example.pl",
            "600 700 800",
            "Gęślarska",
            "Świętego Wojciecha",
            "Kowalczyk",
            "ul. Polna",
        ] {
            anyhow::ensure!(
                !text.contains(personal),
                "{log} holds the buyer's {personal:?}"
            );
        }
    }
    Ok(())
}

/// Waits until shop order `order_id` is completed with a note naming
/// `tracking`; returns the notes naming it and all the order's notes.
async fn completed_with_tracking(
    shop: &WooStandinProcess,
    order_id: u64,
    tracking: &str,
    within: Duration,
) -> anyhow::Result<(Vec<Value>, Vec<Value>)> {
    let shown: Value = wait_for(
        "the shop's order completed with tracking",
        within,
        || async {
            let order = shop.order(order_id).await?;
            let done = order["order"]["status"] == "completed"
                && order["notes"].to_string().contains(tracking);
            Ok(done.then_some(order))
        },
    )
    .await?;
    let notes = shown["notes"].as_array().context("notes")?.clone();
    let naming = notes
        .iter()
        .filter(|n| n.to_string().contains(tracking))
        .cloned()
        .collect();
    Ok((naming, notes))
}

/// Waits for shop order `number`'s RO in Optima: `(TrN_TrNID, TrN_NumerPelny)`.
async fn ro_of(erp: &OptimaStandin, number: &str, order_id: u64) -> anyhow::Result<(i32, String)> {
    wait_for("the RO in Optima", Duration::from_secs(60), || async {
        let docs = documents_for(erp, number, order_id).await?;
        Ok(docs.into_iter().find(|(_, n)| n.starts_with("RO/")))
    })
    .await
}

/// The shop cancels orders Optima already has. One whose RO is still in
/// the buffer: the RO leaves Optima whole and the stored order says so.
/// One whose RO the office has saved for good: it stays, the order is
/// parked on `/status` with a reason a person can act on, and when the
/// office then realises it, the shop order stays cancelled (before the fix
/// the shop order went from cancelled to completed, taking its stock again).
/// And an RO the office cancels in Optima cancels the shop order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_shop_order_leaves_optima_or_waits_for_a_person() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = &tmp.path().to_path_buf();
    let Running {
        erp,
        skus,
        shop,
        cloud,
        _agent,
        ..
    } = Running::start(dir, "orders-cancel").await?;
    let aws = sdk_config(&cloud.emulator.endpoint()).await;
    let table = cloud.stack.output("StateTableName")?.to_owned();
    let store = functions::orders::OrderStore::new(aws_sdk_dynamodb::Client::new(&aws), &table, 30);
    let place = |email: &'static str| {
        shop.place_order(json!({
            "line_items": [[skus[0], 1], [skus[1], 2]],
            "billing": address(email),
            "shipping": address(email),
            "payment_method": "cod",
            "shipping_total": "15.00",
            "status": "processing"
        }))
    };

    // Still in the buffer: taken out of Optima.
    let first = place("anulowane@example.pl").await?;
    let first_id = first["id"].as_u64().context("order id")?;
    let first_number = first["number"].as_str().context("number")?.to_owned();
    let (_, first_ro) = ro_of(&erp, &first_number, first_id).await?;
    let cancelled = Instant::now();
    shop.set_order_status(first_id, "cancelled").await?;
    wait_for(
        "the cancelled order's RO out of Optima",
        Duration::from_secs(60),
        || async {
            let docs = documents_for(&erp, &first_number, first_id).await?;
            Ok(docs.is_empty().then_some(()))
        },
    )
    .await?;
    println!(
        "cancelled in the shop → {first_ro} deleted from the buffer after {:?}",
        cancelled.elapsed()
    );
    let stored = wait_for(
        "the withdrawal on the stored order",
        Duration::from_secs(30),
        || async {
            let stored = store
                .get("sklep", &first_id.to_string())
                .await?
                .context("stored")?;
            Ok(stored.withdrawn.then_some(stored))
        },
    )
    .await?;
    assert_eq!(stored.parked_reason, None, "nothing for a person to do");
    assert_eq!(shop.order(first_id).await?["order"]["status"], "cancelled");

    // Saved for good by the office before the shop cancels: held.
    let second = place("zatwierdzone@example.pl").await?;
    let second_id = second["id"].as_u64().context("order id")?;
    let second_number = second["number"].as_str().context("number")?.to_owned();
    let (ro_id, second_ro) = ro_of(&erp, &second_number, second_id).await?;
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let mut query = Query::new("UPDATE CDN.TraNag SET TrN_Bufor = 0 WHERE TrN_TrNID = @P1");
    query.bind(ro_id);
    query.execute(&mut sql).await?;
    shop.set_order_status(second_id, "cancelled").await?;
    let parked = wait_for(
        "the held cancellation on /status",
        Duration::from_secs(60),
        || async { cloud.parked_order(&second_id.to_string()).await },
    )
    .await?;
    let reason = parked["reason"].as_str().context("a reason")?;
    assert!(
        reason.contains(&second_ro) && reason.contains("left the buffer"),
        "the reason names the document and why: {reason}"
    );
    assert_eq!(
        documents_for(&erp, &second_number, second_id).await?,
        [(ro_id, second_ro.clone())],
        "the RO stays in Optima"
    );

    // The office realises it anyway: the shop order stays cancelled, with
    // no tracking note.
    erp.perform(optima_standin::simulator::Action::Realise {
        ro_id: i64::from(ro_id),
        tracking: "PL5555000111".into(),
    })
    .await?;
    wait_for(
        "the shipped stage in the cloud",
        Duration::from_secs(60),
        || async {
            let stored = store
                .get("sklep", &second_id.to_string())
                .await?
                .context("stored")?;
            Ok((stored.stage.as_deref() == Some("shipped")).then_some(()))
        },
    )
    .await?;
    // shop-push works from a queue: give it the time a status change takes
    // (the first test sees one within seconds), then look.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let order = shop.order(second_id).await?;
    assert_eq!(order["order"]["status"], "cancelled", "{order}");
    assert!(
        !order["notes"].to_string().contains("PL5555000111"),
        "no tracking note on a cancelled order: {}",
        order["notes"]
    );

    // The other way: the office cancels a saved RO in Optima, and the shop
    // order is cancelled (the ERP -> shop half of cancellation, through the
    // real agent: test audit §3).
    let third = place("anulowane-w-biurze@example.pl").await?;
    let third_id = third["id"].as_u64().context("order id")?;
    let third_number = third["number"].as_str().context("number")?.to_owned();
    let (ro_id, _) = ro_of(&erp, &third_number, third_id).await?;
    let mut query = Query::new("UPDATE CDN.TraNag SET TrN_Bufor = 0 WHERE TrN_TrNID = @P1");
    query.bind(ro_id);
    query.execute(&mut sql).await?;
    assert_eq!(shop.order(third_id).await?["order"]["status"], "processing");
    erp.perform(optima_standin::simulator::Action::Cancel {
        ro_id: i64::from(ro_id),
    })
    .await?;
    wait_for(
        "the shop order cancelled after Optima cancelled its RO",
        Duration::from_secs(60),
        || async {
            let order = shop.order(third_id).await?;
            Ok((order["order"]["status"] == "cancelled").then_some(()))
        },
    )
    .await?;
    Ok(())
}

/// An order parked for something the shop side can fix (here: no address)
/// goes to Optima once the shop fixes it: the newer revision is sent again
/// (before, it was stored and never sent, and the order stayed parked with
/// the old reason).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_order_fixed_in_the_shop_goes_in_again() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = tmp.path();
    let Running {
        erp,
        skus,
        shop,
        cloud,
        _agent,
        ..
    } = Running::start(dir, "orders-fixed").await?;
    let placed = shop
        .place_order(json!({
            "line_items": [[skus[0], 1]],
            "billing": {"email": "bez-adresu@example.pl"},
            "payment_method": "bacs",
            "status": "processing"
        }))
        .await?;
    let id = placed["id"].as_u64().context("order id")?;
    let number = placed["number"].as_str().context("number")?.to_owned();
    let parked = wait_for(
        "the order parked for its address",
        Duration::from_secs(60),
        || async { cloud.parked_order(&id.to_string()).await },
    )
    .await?;
    assert!(
        parked["reason"]
            .as_str()
            .is_some_and(|r| r.contains("address")),
        "{parked}"
    );
    assert!(documents_for(&erp, &number, id).await?.is_empty());

    // The shop's staff complete the address (PUT /orders/{id}, as the
    // WooCommerce admin does): order.updated, a newer revision.
    let fixed = reqwest::Client::new()
        .put(format!("{}/wp-json/wc/v3/orders/{id}", shop.base_url))
        .basic_auth(&shop.consumer_key, Some(&shop.consumer_secret))
        .json(&json!({"billing": address("bez-adresu@example.pl"), "shipping": address("bez-adresu@example.pl")}))
        .send()
        .await?;
    anyhow::ensure!(
        fixed.status().is_success(),
        "updating the order: {}",
        fixed.status()
    );
    let docs = wait_for("the fixed order's RO", Duration::from_secs(60), || async {
        let docs = documents_for(&erp, &number, id).await?;
        Ok((!docs.is_empty()).then_some(docs))
    })
    .await?;
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert!(docs[0].1.starts_with("RO/"), "{docs:?}");
    Ok(())
}

/// `(TwrKod, net, gross)` of each line of document `id`, in order.
async fn lines_of(erp: &OptimaStandin, id: i32) -> anyhow::Result<Vec<(String, Decimal, Decimal)>> {
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let mut query = Query::new(
        "SELECT TrE_TwrKod, TrE_WartoscNetto, TrE_WartoscBrutto FROM CDN.TraElem WHERE TrE_TrNId = @P1 ORDER BY TrE_Lp",
    );
    query.bind(id);
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.get::<&str, _>("TrE_TwrKod")
                    .context("TrE_TwrKod")?
                    .to_owned(),
                r.get::<Decimal, _>("TrE_WartoscNetto")
                    .context("TrE_WartoscNetto")?,
                r.get::<Decimal, _>("TrE_WartoscBrutto")
                    .context("TrE_WartoscBrutto")?,
            ))
        })
        .collect()
}

/// The price of `sku` on price list 2, by plain SQL.
async fn price_of(erp: &OptimaStandin, sku: &str) -> anyhow::Result<Decimal> {
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let mut query = Query::new(
        "SELECT CAST(c.TwC_Wartosc AS decimal(15,4)) AS price FROM CDN.TwrCeny c \
         JOIN CDN.Towary t ON t.Twr_TwrId = c.TwC_TwrID WHERE t.Twr_Kod = @P1 AND c.TwC_TwCNumer = 2",
    );
    query.bind(sku);
    let rows = query.query(&mut sql).await?.into_first_result().await?;
    rows.first()
        .and_then(|r| r.get::<Decimal, _>("price"))
        .with_context(|| format!("no price on list 2 for {sku}"))
}

/// `(TrN_RazemNetto, TrN_RazemBrutto)` of document `id`.
async fn totals_of(erp: &OptimaStandin, id: i32) -> anyhow::Result<(Decimal, Decimal)> {
    let mut sql = optima_standin::erp::connect(&erp.ado_with_password()).await?;
    let mut query =
        Query::new("SELECT TrN_RazemNetto, TrN_RazemBrutto FROM CDN.TraNag WHERE TrN_TrNID = @P1");
    query.bind(id);
    let row = query
        .query(&mut sql)
        .await?
        .into_row()
        .await?
        .context("the document")?;
    Ok((
        row.get::<Decimal, _>("TrN_RazemNetto")
            .context("TrN_RazemNetto")?,
        row.get::<Decimal, _>("TrN_RazemBrutto")
            .context("TrN_RazemBrutto")?,
    ))
}

fn amount(v: &Value) -> anyhow::Result<Decimal> {
    v.as_str()
        .with_context(|| format!("an amount: {v}"))?
        .parse::<Decimal>()
        .map_err(anyhow::Error::from)
}

/// Optima keeps amounts in grosze and rounds half away from zero.
fn grosz(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// Cash on delivery with the shop's "Pobranie" fee becomes an RO with the fee
/// as a service line; in a shop with three price decimals
/// (`woocommerce_price_num_decimals = 3`) an order is rounded to the grosz
/// and written when its parts add up to the shop's total, and parked,
/// naming the grosz, when rounding each part drifts from the total. Every
/// expected figure is worked out from the shop's own amounts by hand
/// arithmetic, not by the writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cod_fee_and_three_decimal_amounts_reach_optima_to_the_grosz() -> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = &tmp.path().to_path_buf();
    let Running {
        erp,
        skus,
        shop,
        cloud,
        _agent,
        ..
    } = Running::start(dir, "orders-fees").await?;
    let place = |email: &'static str, shipping: &'static str, fee: Option<&'static str>| {
        let mut order = json!({
            "line_items": [[skus[0], 3]],
            "billing": address(email),
            "shipping": address(email),
            "payment_method": "cod",
            "payment_method_title": "Płatność przy odbiorze",
            "shipping_total": shipping,
            "status": "processing"
        });
        if let Some(fee) = fee {
            order["fee_lines"] = json!([{"name": "Pobranie", "total": fee}]);
        }
        shop.place_order(order)
    };
    // The goods line's gross, net and the shop's total, as the shop shows them.
    let shop_amounts = |order: &Value| -> anyhow::Result<(Decimal, Decimal, Decimal)> {
        let line = &order["line_items"][0];
        let net = amount(&line["total"])?;
        Ok((
            net + amount(&line["total_tax"])?,
            net,
            amount(&order["total"])?,
        ))
    };

    // Two decimals: goods, the fee (5.00 + 23 % = 6.15) and shipping (15.00 + 3.45 = 18.45).
    let cod = place("pobranie@example.pl", "15.00", Some("5.00")).await?;
    let cod_id = cod["id"].as_u64().context("order id")?;
    let cod_number = cod["number"].as_str().context("number")?.to_owned();
    assert_eq!(cod["fee_lines"][0]["total_tax"], "1.15", "{cod}");
    let (goods_gross, _, total) = shop_amounts(&cod)?;
    let (ro, ro_number) = ro_of(&erp, &cod_number, cod_id).await?;
    let lines = lines_of(&erp, ro).await?;
    let gross: Vec<(&str, Decimal)> = lines.iter().map(|(k, _, g)| (k.as_str(), *g)).collect();
    assert_eq!(
        gross,
        vec![
            (skus[0].as_str(), goods_gross),
            ("TRANSPORT", Decimal::new(615, 2)),
            ("TRANSPORT", Decimal::new(1845, 2)),
        ],
        "goods, the fee and shipping in {ro_number}"
    );
    assert_eq!(
        totals_of(&erp, ro).await?.1,
        total,
        "{ro_number} totals the shop's order"
    );

    let response = reqwest::Client::new()
        .put(format!("{}/__standin/settings", shop.base_url))
        .json(&json!({"price_decimals": 3}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "setting 3 price decimals: {}",
        response.status()
    );

    // Three decimals that add up: shipping 10.000 + 2.300 VAT; the goods' net
    // (gross − VAT rounded to 0.001) is rounded to the grosz, the gross is whole grosze.
    let even = place("trzy@example.pl", "10.000", None).await?;
    let even_id = even["id"].as_u64().context("order id")?;
    let even_number = even["number"].as_str().context("number")?.to_owned();
    let (goods_gross, goods_net, total) = shop_amounts(&even)?;
    assert_eq!(
        total,
        goods_gross + Decimal::new(12300, 3),
        "the shop's own arithmetic: {even}"
    );
    let (ro, ro_number) = ro_of(&erp, &even_number, even_id).await?;
    let lines = lines_of(&erp, ro).await?;
    assert_eq!(
        lines,
        vec![
            (skus[0].clone(), grosz(goods_net), goods_gross),
            (
                "TRANSPORT".to_owned(),
                Decimal::new(1000, 2),
                Decimal::new(1230, 2)
            ),
        ],
        "{ro_number}: each part to the grosz"
    );
    assert_eq!(
        totals_of(&erp, ro).await?,
        (grosz(goods_net) + Decimal::new(1000, 2), grosz(total)),
        "{ro_number}: the header is the sum of its lines and the shop's total"
    );

    // Three decimals that drift: the fee 4.995 + 1.149 = 6.144 → 6.14 and shipping
    // 12.345 + 2.839 = 15.184 → 15.18 give goods + 21.32, but the shop's total is
    // goods + 21.328 → goods + 21.33. Parked, naming the grosz; nothing written.
    let drift = place("dryf@example.pl", "12.345", Some("4.995")).await?;
    let drift_id = drift["id"].as_u64().context("order id")?;
    let drift_number = drift["number"].as_str().context("number")?.to_owned();
    let (goods_gross, _, total) = shop_amounts(&drift)?;
    assert_eq!(total, goods_gross + Decimal::new(21328, 3), "{drift}");
    let parked = wait_for(
        "the drifting order parked",
        Duration::from_secs(60),
        || async { cloud.parked_order(&drift_id.to_string()).await },
    )
    .await?;
    let reason = parked["reason"].as_str().context("a reason")?;
    assert!(
        reason.contains("grosz"),
        "the reason names the rounding: {reason}"
    );
    assert!(
        documents_for(&erp, &drift_number, drift_id)
            .await?
            .is_empty(),
        "nothing written for a parked order"
    );
    Ok(())
}

/// The agent's state file and its WAL companions.
fn state_files(dir: &std::path::Path, name: &str) -> [std::path::PathBuf; 3] {
    ["", "-wal", "-shm"].map(|suffix| dir.join(format!("{name}{suffix}")))
}

fn copy_state(dir: &std::path::Path, from: &str, to: &str) -> anyhow::Result<()> {
    for (from, to) in state_files(dir, from)
        .iter()
        .zip(state_files(dir, to).iter())
    {
        let _ = std::fs::remove_file(to);
        if from.exists() {
            std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
        }
    }
    Ok(())
}

/// Review R2: the office restores the agent's state file from a backup
/// older than what the cloud applied, and ships an order before the agent
/// is back. The restored file numbers its reports below what the cloud
/// applied in that life, so the cloud drops them as duplicates: before the
/// fix the shipping (a final stage, never reported again) never reached
/// the shop. The cloud's resend names the life and its last applied
/// number; the agent begins a new life and reports again what it reported
/// since it opened the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_shipped_after_the_state_file_was_restored_from_a_backup_reaches_the_shop()
-> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = &tmp.path().to_path_buf();
    let Running {
        erp,
        skus,
        shop,
        cloud,
        _agent: mut agent,
        ..
    } = Running::start(dir, "state-restore").await?;
    let aws = sdk_config(&cloud.emulator.endpoint()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let table = cloud.stack.output("StateTableName")?.to_owned();
    let store = functions::orders::OrderStore::new(dynamodb.clone(), &table, 30);
    let restart = |log: &str| {
        start_agent(
            &dir.join("agent.toml"),
            &cloud.emulator.endpoint(),
            &dir.join(log),
            &[("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())],
        )
    };
    let place_acked = |email: String| {
        let (shop, store, erp, sku) = (&shop, &store, &erp, skus[0].clone());
        async move {
            let order = shop
                .place_order(json!({
                    "line_items": [[sku, 1]],
                    "billing": address(&email),
                    "shipping": address(&email),
                    "payment_method": "bacs",
                    "status": "processing"
                }))
                .await?;
            let order_id = order["id"].as_u64().context("order id")?;
            let number = order["number"].as_str().context("number")?.to_owned();
            let (ro_id, _) = ro_of(erp, &number, order_id).await?;
            wait_for("the acknowledgement", Duration::from_secs(30), || async {
                let stored = store.get("sklep", &order_id.to_string()).await?;
                Ok(stored.and_then(|s| s.erp_document_number))
            })
            .await?;
            anyhow::Ok((order_id, ro_id))
        }
    };

    let (shipped_id, shipped_ro) = place_acked("pierwszy@example.pl".into()).await?;
    agent.kill();
    copy_state(dir, "biuro-state.sqlite", "backup.sqlite")?;
    let (life, at_backup) = harness::cloud::applied_life(&dynamodb, &table, "biuro")
        .await?
        .context("the cloud has applied the agent's messages")?;
    agent = restart("agent-2.log")?;
    // More said in the same life after the backup: orders and their answers.
    for n in 0..4 {
        place_acked(format!("kolejny{n}@example.pl")).await?;
    }
    let ahead = wait_for(
        "the cloud applying well past the backup",
        Duration::from_secs(60),
        || async {
            let now = harness::cloud::applied_life(&dynamodb, &table, "biuro").await?;
            Ok(now.filter(|(l, last)| *l == life && *last >= at_backup + 8))
        },
    )
    .await?;
    println!(
        "backup at seq {at_backup}; the cloud applied {} in life {life}",
        ahead.1
    );

    agent.kill();
    copy_state(dir, "backup.sqlite", "biuro-state.sqlite")?;
    erp.perform(optima_standin::simulator::Action::Realise {
        ro_id: i64::from(shipped_ro),
        tracking: "PL4242000111".into(),
    })
    .await?;
    let mut agent = restart("agent-3.log")?;
    let restarted = Instant::now();

    let (tracking_notes, notes) =
        completed_with_tracking(&shop, shipped_id, "PL4242000111", Duration::from_secs(90)).await?;
    println!(
        "restored state → shipping in the shop after {:?}",
        restarted.elapsed()
    );
    assert_eq!(tracking_notes.len(), 1, "one tracking note: {notes:?}");
    // The fault landed: the agent found its file behind the cloud.
    agent.wait_for_log("the state begins a new life", Duration::from_secs(5))?;
    let (new_life, _) = harness::cloud::applied_life(&dynamodb, &table, "biuro")
        .await?
        .context("the new life applied")?;
    assert_ne!(new_life, life, "the cloud follows the agent's new life");
    Ok(())
}

/// A state file restored from a backup taken *after* an older one began a
/// new life: its own life is in order (nothing it numbers is a duplicate),
/// but a later life has passed it, and everything it says ranks below
/// what that later life said, so the cloud would drop it as older for good.
/// The cloud must tell it to begin a new life too. Found by the fault
/// campaign (`a_state_file_restored_from_an_older_backup_loses_nothing`,
/// 35 products stuck under CI load).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_from_a_life_another_restore_passed_is_told_to_begin_a_new_one()
-> anyhow::Result<()> {
    let tmp = harness::TestDir::new()?;
    let dir = &tmp.path().to_path_buf();
    let Running {
        erp,
        skus,
        shop,
        cloud,
        _agent: mut agent,
        ..
    } = Running::start(dir, "superseded").await?;
    let aws = sdk_config(&cloud.emulator.endpoint()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let table = cloud.stack.output("StateTableName")?.to_owned();
    let restart = |log: &str| {
        start_agent(
            &dir.join("agent.toml"),
            &cloud.emulator.endpoint(),
            &dir.join(log),
            &[("OPTIMA_SYNC_SQL__PASSWORD", erp.password.as_str())],
        )
    };
    let applied = || harness::cloud::applied_life(&dynamodb, &table, "biuro");
    let (first_life, _) = wait_for(
        "the first pass applied",
        Duration::from_secs(60),
        || async { Ok(applied().await?.filter(|(_, last)| *last >= 3)) },
    )
    .await?;
    // Backup E (early in the first life), then more said, then backup L.
    agent.kill();
    copy_state(dir, "biuro-state.sqlite", "early.sqlite")?;
    // What E numbered last, read from the copy (it may hold messages the
    // cloud has not applied yet, so the cloud's figure is not it).
    let (_, early_last) = agent::store::Store::open(&dir.join("early.sqlite"))?.position()?;
    // More said in the first life, past everything E numbered: a price
    // change in Optima, waited for until the shop shows it (so the cloud
    // applied it; a restart alone may say nothing new: the first pass may
    // have gone out whole before the kill).
    let new_price = price_of(&erp, &skus[1]).await? + Decimal::new(1, 2);
    erp.perform(optima_standin::simulator::Action::PriceChange {
        sku: skus[1].clone(),
        price_list: 2,
        price: new_price,
    })
    .await?;
    agent = restart("agent-2.log")?;
    let shown = format!("{:.2}", new_price.round_dp(2));
    wait_for(
        "the second agent's price change in the shop",
        Duration::from_secs(60),
        || async {
            Ok(shop
                .product(&skus[1])
                .await?
                .filter(|p| p["regular_price"] == shown.as_str()))
        },
    )
    .await?;
    let (life, late_applied) = applied().await?.context("applied")?;
    anyhow::ensure!(
        life == first_life && late_applied > early_last,
        "the price change applied in the first life past E"
    );
    agent.kill();
    copy_state(dir, "biuro-state.sqlite", "late.sqlite")?;
    // E restored: behind the cloud. Its first pass finds the price change
    // again and numbers it with a number L's life gave already: the cloud
    // must see that the number was given twice (not a redelivery) and
    // tell it to begin a second life, whatever E numbered meanwhile.
    copy_state(dir, "early.sqlite", "biuro-state.sqlite")?;
    agent = restart("agent-3.log")?;
    let (second_life, _) = wait_for("a second life applied", Duration::from_secs(90), || async {
        Ok(applied().await?.filter(|(l, _)| *l != first_life))
    })
    .await?;
    agent.kill();
    // L restored: the first life again, in order within it.
    copy_state(dir, "late.sqlite", "biuro-state.sqlite")?;
    let sku = skus[0].clone();
    erp.perform(optima_standin::simulator::Action::PriceChange {
        sku: sku.clone(),
        price_list: 2,
        price: "123.4567".parse()?,
    })
    .await?;
    let mut agent = restart("agent-4.log")?;
    let restarted = Instant::now();
    wait_for(
        "the new price in the shop",
        Duration::from_secs(90),
        || async {
            Ok(shop
                .product(&sku)
                .await?
                .filter(|p| p["regular_price"] == "123.46"))
        },
    )
    .await?;
    println!(
        "first life {first_life}, second {second_life}; the first restored again → the price in the shop after {:?}",
        restarted.elapsed()
    );
    // Told on its first heartbeat (every 30 s here): when the second life
    // was killed before its resend was applied, the new price was not
    // older than anything and reached the shop before that.
    agent.wait_for_log("the state begins a new life", Duration::from_secs(75))?;
    // The new life's first envelope is applied a moment after the agent
    // logs it.
    wait_for("a third life applied", Duration::from_secs(30), || async {
        Ok(applied()
            .await?
            .filter(|(now, _)| *now != first_life && *now != second_life))
    })
    .await?;
    Ok(())
}
