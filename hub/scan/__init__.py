"""Scan-to-report: QR labels on devices, the phone page behind them, and the reporting keys they carry."""
