from core.models import Customer


def test_fixture(services, database_url):
    with services.db.transaction() as session:
        c = services.loyalty.create_customer(session, {"email": "a@b.cz"})
        services.loyalty.post_transaction(session, c, 10, "order")
    with services.db.transaction() as session:
        assert session.get(Customer, c.id).balance == 10
