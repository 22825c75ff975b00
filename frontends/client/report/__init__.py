"""A deployment's report page: self-contained HTML with charts (docs/REPORTS.md)."""

from frontends.client.report.page import report_page

__all__ = ["report_page"]
