"""The report's figures: `data` (what each plot shows, from the report model), `draw`
(matplotlib, byte-stable PNGs), `validation` (validation curves), `figures` (which plots a
setting gets and where they are written)."""
