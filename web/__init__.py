"""The Flask blueprints, one per concern: ``api`` (Rasa's REST channel, feedback, health),
``pages`` (the demo, the notices, each notice), ``widget`` (the embed) and ``staff`` (the staff
console). ``server.py`` is the app factory that registers them."""
