"""Deploy: DDL for the project model, plans, and the backends that run them."""
