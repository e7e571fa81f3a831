"""What a verdict becomes for people and pipelines: verdict.json, junit.xml, summary.md, the terminal table and report.html."""
