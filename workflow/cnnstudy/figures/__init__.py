"""What presents the results: per-model figures, comparison, gradient and claims figures, sweeps (figure
and table), and the report's landing and config pages; ``style`` holds what every figure shares (its
width for the report's column, font sizes, one colour per model).

May import every other wing except ``conv``; nothing imports it.
"""
