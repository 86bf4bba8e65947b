"""The token API's logic: who is calling (auth), what they may see (accounts), the routes (service),
their HTTP shape (resolver) and their OpenAPI document. ``token_api/app.py`` only hands events here.
"""
