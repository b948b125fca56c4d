"""Risk scoring: point-in-time features, the transaction and account models, reasons and evaluation."""
