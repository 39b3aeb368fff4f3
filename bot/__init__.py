"""Bot: answers, the Rasa project and its actions, the embedded dialogue and the staff CLI."""
