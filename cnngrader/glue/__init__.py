"""nbgrader glue: the preprocessors, converter, feedback exporter and plugins nbgrader_config.py installs."""
