//! The catalog is the contract every fake serves: names, paths and bodies.

use fake_upstreams::Service;
use serde_json::json;

#[test]
fn each_service_is_named_after_its_url_segment() {
    let names = Service::ALL.map(Service::name);

    assert_eq!(names, ["inventory", "pricing", "reviews"]);
}

#[test]
fn a_services_path_is_its_name_then_the_product_id() {
    let paths = Service::ALL.map(|service| service.path(42));

    assert_eq!(paths, ["/inventory/42", "/pricing/42", "/reviews/42"]);
}

#[test]
fn bodies_for_product_42_have_the_documented_fields_and_values() {
    let bodies = Service::ALL.map(|service| service.body(42));

    assert_eq!(
        bodies,
        [
            json!({"product_id": 42, "in_stock": 44, "warehouse": "ams-1"}),
            json!({"product_id": 42, "amount_cents": 5199, "currency": "EUR"}),
            json!({"product_id": 42, "average_stars": 4.0, "count": 46}),
        ]
    );
}

#[test]
fn the_same_id_always_gives_the_same_body() {
    for service in Service::ALL {
        for id in [0, 1, 42, 999, 123_456_789] {
            assert_eq!(service.body(id), service.body(id), "{service} {id}");
        }
    }
}

#[test]
fn different_ids_give_different_bodies() {
    for service in Service::ALL {
        assert_ne!(service.body(1), service.body(2), "{service}");
    }
}

#[test]
fn every_body_echoes_its_product_id() {
    for service in Service::ALL {
        for id in [0, 7, 42, u64::MAX] {
            assert_eq!(service.body(id)["product_id"], id, "{service} {id}");
        }
    }
}

#[test]
fn body_values_stay_within_their_ranges() {
    for id in 0..1_000 {
        let inventory = Service::Inventory.body(id);
        let pricing = Service::Pricing.body(id);
        let reviews = Service::Reviews.body(id);

        assert!(inventory["in_stock"].as_u64().unwrap() < 50);
        assert!((999..=10_899).contains(&pricing["amount_cents"].as_u64().unwrap()));
        let stars = reviews["average_stars"].as_f64().unwrap();
        assert!((3.0..=5.0).contains(&stars), "{stars} stars for {id}");
        assert!(reviews["count"].as_u64().unwrap() < 500);
    }
}
