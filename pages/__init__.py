"""The site's server-rendered pages (spec §4): they work without JavaScript and go live with it.

Views parse the request, call one service or selector and render a template from
`templates/`; the live parts are `static/js/auction.js` over the WebSocket API.
"""
