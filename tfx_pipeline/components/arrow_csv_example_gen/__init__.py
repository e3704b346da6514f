"""ArrowCsvExampleGen: CsvExampleGen's examples, parsed by Arrow and encoded in C++, shuffled in bounded memory.

csv_examples.py  CSV files to serialized tf.Examples (Arrow + tfx-bsl's C++ coder), typed by the
                 schema when given; Beam, no TFX
csv_errors.py    why a file cannot be read as CSV: the file, the likely cause, the line; no TFX
shuffle.py       each split shuffled through hash buckets into gzip shards; Beam, no TFX
executor.py      TFX's ExampleGen executor steps around the two
component.py     the TFX component (CsvExampleGen's interface, plus an optional schema input)
"""
