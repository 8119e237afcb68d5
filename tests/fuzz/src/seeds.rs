//! Seeds: real payloads the mutations start from.

/// A WooCommerce order as the stand-in's REST API sends it (non-ASCII as
/// \uXXXX, `/` escaped, price as a number).
pub const ORDER: &str = r#"{"id":42,"parent_id":0,"status":"processing","currency":"PLN","version":"9.4.2","prices_include_tax":true,"date_created":"2026-03-01T10:00:00","date_created_gmt":"2026-03-01T09:00:00","date_modified":"2026-03-01T10:00:05","date_modified_gmt":"2026-03-01T09:00:05","discount_total":"23.00","discount_tax":"4.84","shipping_total":"15.00","shipping_tax":"3.45","cart_tax":"43.56","total":"269.01","total_tax":"47.01","customer_id":0,"order_key":"wc_order_abc","billing":{"first_name":"\u017baneta","last_name":"\u0141\u0119cka","company":"Firma Sp. z o.o.","address_1":"ul. D\u0142uga 1\/3","address_2":"","city":"\u0141\u00f3d\u017a","state":"","postcode":"90-001","country":"PL","email":"a@example.pl","phone":"600100200"},"shipping":{"first_name":"Jan","last_name":"Nowak","company":"","address_1":"Polna 2","address_2":"","city":"Krak\u00f3w","state":"","postcode":"30-001","country":"PL","phone":""},"payment_method":"bacs","payment_method_title":"Przelew","transaction_id":"","customer_ip_address":"127.0.0.1","customer_user_agent":"x","created_via":"checkout","customer_note":"Prosz\u0119 dzwoni\u0107","date_completed":null,"date_completed_gmt":null,"date_paid":"2026-03-01T10:00:05","date_paid_gmt":"2026-03-01T09:00:05","cart_hash":"","number":"42","meta_data":[{"id":9,"key":"_billing_nip","value":"5260250274"}],"line_items":[{"id":1,"name":"Kawa ziarnista 1 kg","product_id":10,"variation_id":0,"quantity":2,"tax_class":"","subtotal":"200.00","subtotal_tax":"46.00","total":"180.00","total_tax":"41.40","taxes":[{"id":1,"total":"41.40","subtotal":"46.00"}],"meta_data":[],"sku":"KAWA-1","price":90,"image":{"id":"","src":""},"parent_name":null},{"id":2,"name":"Herbata","product_id":11,"variation_id":0,"quantity":3,"tax_class":"reduced-rate","subtotal":"30.00","subtotal_tax":"2.40","total":"27.00","total_tax":"2.16","taxes":[{"id":2,"total":"2.16","subtotal":"2.40"}],"meta_data":[],"sku":"HERB-1","price":9,"image":{"id":"","src":""},"parent_name":null}],"tax_lines":[{"id":5,"rate_code":"PL-VAT 23%-1","rate_id":1,"label":"VAT","compound":false,"tax_total":"41.40","shipping_tax_total":"3.45","rate_percent":23,"meta_data":[]},{"id":6,"rate_code":"PL-VAT 8%-1","rate_id":2,"label":"VAT","compound":false,"tax_total":"2.16","shipping_tax_total":"0.00","rate_percent":8,"meta_data":[]}],"shipping_lines":[{"id":7,"method_title":"Kurier","method_id":"flat_rate","instance_id":"","total":"15.00","total_tax":"3.45","taxes":[{"id":1,"total":"3.45","subtotal":""}],"meta_data":[]}],"fee_lines":[{"id":8,"name":"Pobranie","tax_class":"","tax_status":"taxable","amount":"5.00","total":"5.00","total_tax":"1.15","taxes":[{"id":1,"total":"1.15","subtotal":""}],"meta_data":[]}],"coupon_lines":[{"id":3,"code":"rabat10","discount":"23.00","discount_tax":"4.84","meta_data":[]}],"refunds":[],"payment_url":"","is_editable":false,"needs_payment":false,"needs_processing":true,"currency_symbol":"z\u0142","_links":{"self":[{"href":"http:\/\/127.0.0.1\/wp-json\/wc\/v3\/orders\/42"}]}}"#;

/// The same shape, minimal: a guest, no shipping, a pending order.
pub const MINIMAL: &str = r#"{"id":7,"status":"pending","currency":"PLN","date_modified_gmt":"2026-01-02T03:04:05","total":"12.30","total_tax":"2.30","billing":{},"line_items":[{"name":"X","sku":"X-1","quantity":1,"total":"10.00","total_tax":"2.30"}]}"#;

/// An order with `items` product lines and `fees` fee lines, the smallest
/// each line can be, to reach the line bound.
pub fn order_with_lines(items: usize, fees: usize) -> String {
    let item =
        r#"{"name":"X","sku":"X-1","quantity":1,"total":"1.00","total_tax":"0.23","taxes":[]}"#;
    let fee = r#"{"name":"Pobranie","total":"1.00","total_tax":"0.23"}"#;
    format!(
        r#"{{"id":8,"status":"processing","currency":"PLN","date_modified_gmt":"2026-01-02T03:04:05","total":"{}","total_tax":"0.00","line_items":[{}],"fee_lines":[{}]}}"#,
        items + fees,
        vec![item; items].join(","),
        vec![fee; fees].join(","),
    )
}

/// The contract's golden envelopes, one of every kind (the wire format the
/// cloud decodes from agents and the agent decodes from the cloud).
pub const ENVELOPES: [&str; 13] = [
    include_str!("../../../contract/tests/golden/cancel_order.json"),
    include_str!("../../../contract/tests/golden/create_order.json"),
    include_str!("../../../contract/tests/golden/customers.json"),
    include_str!("../../../contract/tests/golden/force_sync.json"),
    include_str!("../../../contract/tests/golden/heartbeat.json"),
    include_str!("../../../contract/tests/golden/order_ack.json"),
    include_str!("../../../contract/tests/golden/order_progress.json"),
    include_str!("../../../contract/tests/golden/ping.json"),
    include_str!("../../../contract/tests/golden/prices.json"),
    include_str!("../../../contract/tests/golden/products.json"),
    include_str!("../../../contract/tests/golden/resend.json"),
    include_str!("../../../contract/tests/golden/retry_order.json"),
    include_str!("../../../contract/tests/golden/stock.json"),
];
