// Integration tests talk to real services; a slow CI machine needs more than jest's 5 s default.
jest.setTimeout(60_000);
