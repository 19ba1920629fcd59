"""Modal dialogs: feedback reason, text editor, confirmation, chooser, help."""
