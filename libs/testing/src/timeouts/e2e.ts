// End-to-end tests start whole services and wait for Kafka consumer groups to catch up.
jest.setTimeout(180_000);
