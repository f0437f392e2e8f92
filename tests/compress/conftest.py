from after_training_support import digits_run, table_run, text_run  # noqa: F401 - fixtures
