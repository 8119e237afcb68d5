//! Allegro's batch write against the Allegro stand-in on 127.0.0.1: how the
//! tasks of a write's quantity and price commands become one outcome per
//! offer.

use std::sync::Arc;
use std::time::Duration;

use allegro_standin::{AllegroOptions, AllegroStandin, NewOffer};
use functions::mapping::ProductChanges;
use functions::shop::allegro::{
    Allegro, AllegroConfig, AllegroCredentials, AllegroSettings, MemoryTokens, TokenPair,
};
use functions::shop::{CatalogueSink, ItemOutcome, Secret, ShopItemId};
use rust_decimal_macros::dec;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn shop() -> Result<(AllegroStandin, Allegro), Box<dyn std::error::Error>> {
    let mut options = AllegroOptions::default();
    // Commands finish on their first look.
    options.config.command_delay_ms = 0;
    let standin = AllegroStandin::start(options).await?;
    let pair = standin.issue_tokens(standin.seller_id());
    let tokens = Arc::new(MemoryTokens::new(Some(TokenPair {
        access: Secret::new(pair.access_token),
        refresh: Secret::new(pair.refresh_token.ok_or("a refresh token")?),
    })));
    let config = AllegroConfig {
        base_url: standin.api_url(),
        credentials: AllegroCredentials {
            client_id: standin.client_id().to_owned(),
            client_secret: Secret::new(standin.client_secret()),
        },
        tokens,
        settings: AllegroSettings {
            auth_url: standin.auth_url(),
            timeout: Duration::from_secs(2),
            command_poll: Duration::from_millis(20),
            ..AllegroSettings::default()
        },
    };
    let allegro = Allegro::new(config)?;
    Ok((standin, allegro))
}

#[tokio::test]
async fn a_refused_quantity_stands_for_the_offer_though_its_price_was_taken() -> TestResult {
    let (standin, allegro) = shop().await?;
    let offer = standin.add_offer(NewOffer::new("SKU-1", "Produkt 1", "10.00", 5))?;
    // Whichever of the two commands Allegro runs first gets the refusal;
    // the other succeeds.
    standin.fail_next_task(&offer.id, "OFFER_LOCKED", "The offer is being edited.");
    let changes = ProductChanges {
        stock_quantity: Some(3),
        regular_price: Some(dec!(12.50)),
        ..ProductChanges::default()
    };
    let outcomes = allegro
        .write_products(&[(ShopItemId::product(offer.id.clone()), changes)])
        .await?;
    assert!(
        matches!(&outcomes[..], [ItemOutcome::Rejected { code, .. }] if code == "OFFER_LOCKED"),
        "{outcomes:?}"
    );
    let after = standin.offer(&offer.id).ok_or("the offer")?;
    let changed = usize::from(after.available == 3) + usize::from(after.price == dec!(12.50));
    assert_eq!(changed, 1, "exactly one value was taken: {after:?}");
    Ok(())
}

#[tokio::test]
async fn a_stock_change_allegro_reported_no_task_for_is_not_taken_as_done() -> TestResult {
    let (standin, allegro) = shop().await?;
    let offer = standin.add_offer(NewOffer::new("SKU-1", "Produkt 1", "10.00", 5))?;
    let other = standin.add_offer(NewOffer::new("SKU-2", "Produkt 2", "10.00", 5))?;
    standin.omit_next_task(&offer.id);
    let stock_only = ProductChanges {
        stock_quantity: Some(0),
        ..ProductChanges::default()
    };
    let outcomes = allegro
        .write_products(&[
            (ShopItemId::product(offer.id.clone()), stock_only.clone()),
            (ShopItemId::product(other.id.clone()), stock_only),
            // Nothing to write: nothing to report.
            (
                ShopItemId::product(other.id.clone()),
                ProductChanges::default(),
            ),
        ])
        .await?;
    assert!(
        matches!(&outcomes[0], ItemOutcome::Rejected { code, .. } if code == "NO_TASK"),
        "{outcomes:?}"
    );
    assert!(outcomes[1].is_ok(), "{outcomes:?}");
    assert!(outcomes[2].is_ok(), "{outcomes:?}");
    assert_eq!(standin.offer(&offer.id).ok_or("the offer")?.available, 5);
    Ok(())
}
