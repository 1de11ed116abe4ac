"""The bundled models' weights, configs and model cards: installed with Kinemo as the package kinemo_assets."""
