"""docs/dump-your-run.md quotes the worked example: every block it marks as taken from
python/examples/megatron_block.py must still be there, verbatim, so the page stays runnable."""

import os
import re
import unittest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MARK = re.compile(r"<!-- from (\S+) -->\n```python\n(.*?)```", re.S)


class DocsQuoteTheExample(unittest.TestCase):
    def test_quoted_blocks_exist(self):
        with open(os.path.join(ROOT, "docs", "dump-your-run.md")) as f:
            doc = f.read()
        blocks = MARK.findall(doc)
        self.assertGreaterEqual(len(blocks), 4, "the page quotes the example")
        for path, block in blocks:
            with self.subTest(reason=f"{path}: {block.splitlines()[0].strip()}"):
                with open(os.path.join(ROOT, path)) as f:
                    self.assertIn(block, f.read())


if __name__ == "__main__":
    unittest.main()
