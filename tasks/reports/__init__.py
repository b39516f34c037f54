"""Reports over the output root's tables: the coverage report's data (coverage.py) and its HTML page (html_page.py)."""
