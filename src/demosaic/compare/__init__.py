"""``demosaic-compare``: several demosaicking methods on the user's own raw files, side by
side in one self-contained HTML page (and a PNG contact sheet).

- :mod:`~demosaic.compare.methods`: each method develops the file through the path
  ``demosaic-infer`` runs (networks) or the one LibRaw develop (LibRaw's demosaickers), giving
  an upright linear sRGB image, its description and its time;
- :mod:`~demosaic.compare.crops`: where to look (the methods disagree most, fine colour
  detail), spread over the frame, plus the user's crops;
- :mod:`~demosaic.compare.page`: the HTML page (its style and script:
  :mod:`~demosaic.compare.page_assets`); :mod:`~demosaic.compare.sheet`: the sheet;
- :mod:`~demosaic.compare.run`: the whole command for a list of files.
"""
