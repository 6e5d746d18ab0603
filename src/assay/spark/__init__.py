"""The Spark engine: certification and statistics over Spark tables.

    from assay import spark as assay_spark

    cert = assay_spark.certify(spark_df, policy="credit-lending", tier="high",
                               target="default", model="model.joblib",
                               sensitive=["sex"])

See ``docs/spark.md``. Needs ``pyspark`` (the ``spark`` extra) and Java.
"""

from assay.spark.certify import certify, open_spark
from assay.spark.dataset import SparkDataset, read_spark, spark_session
from assay.spark.monitor import ingest

__all__ = ["SparkDataset", "certify", "ingest", "open_spark", "read_spark", "spark_session"]
