"""The versioned HeadRoom report: every metric of the roadmap's checklist, H1-H5 verdicts, a regression
gate against a baseline report, a readable table and a self-contained HTML summary."""
