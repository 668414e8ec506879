// Every page of a signed-in user: their notifications, live (spec §8). One WebSocket that
// follows nothing but the user's own stream: each new notification bumps the header's
// unread count and shows a notice for a while. After a drop it reconnects and asks for the
// ones after the last it saw ("notifications" with since_seq), so none is missed; the page
// says where the stream stood when it was drawn (data-notification-seq). A page with a live
// socket of its own (the auction page) claims the stream instead: it sends resumeMessage()
// when its socket opens and hands each notification to take(), and no second socket opens.
(function () {
  "use strict";

  var body = document.body;
  if (!body || !body.hasAttribute("data-notification-seq") || !window.WebSocket) return;
  var lastSeq = parseInt(body.getAttribute("data-notification-seq"), 10) || 0;
  var reconnectDelay = 1000;
  var NOTICE_SECONDS = 8;

  var WORDS = {
    outbid: "You were outbid on",
    ending_soon: "Ending soon:",
    won: "You won",
    lost: "Another bidder won",
    sold: "Sold:",
    not_sold: "Not sold:",
  };

  function bumpUnread() {
    var count = document.getElementById("unread-count");
    if (!count) return;
    var n = (parseInt(count.getAttribute("data-count"), 10) || 0) + 1;
    count.setAttribute("data-count", String(n));
    count.textContent = String(n);
    count.hidden = false;
  }

  function noticeList() {
    var list = document.getElementById("live-notices");
    if (!list) {
      list = document.createElement("ul");
      list.id = "live-notices";
      list.className = "live-notices";
      list.setAttribute("role", "status");
      list.setAttribute("aria-live", "polite");
      body.appendChild(list);
    }
    return list;
  }

  function showNotice(msg) {
    var data = msg.data || {};
    var item = document.createElement("li");
    item.className = "live-notice " + msg.kind;
    item.setAttribute("data-seq", String(msg.seq));
    item.setAttribute("data-kind", msg.kind);
    var link = document.createElement("a");
    link.href = data.url || "/notifications/";
    link.textContent = (WORDS[msg.kind] || msg.kind) + " " + (data.item_name || "an auction") +
      (data.price ? " (" + data.price + ")" : "");
    item.appendChild(link);
    noticeList().appendChild(item);
    setTimeout(function () { item.remove(); }, NOTICE_SECONDS * 1000);
  }

  var claimed = false;
  window.siteNotifications = {
    claim: function () {
      claimed = true;
      return {
        resumeMessage: function () { return { type: "notifications", since_seq: lastSeq }; },
        take: onNotification,
      };
    },
  };

  function onNotification(msg) {
    if (typeof msg.seq !== "number" || msg.seq <= lastSeq) return;  // a repeat, or a replay of one seen
    lastSeq = msg.seq;
    bumpUnread();
    showNotice(msg);
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/");
    socket.onopen = function () {
      reconnectDelay = 1000;
      socket.send(JSON.stringify({ type: "notifications", since_seq: lastSeq }));
    };
    socket.onmessage = function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (msg.type === "notification") onNotification(msg);
    };
    socket.onclose = function (event) {
      if (event.code === 4401) return;  // not signed in (any more)
      setTimeout(connect, reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, 30000);
    };
  }

  // Deferred scripts run while the document is "interactive", and all of them before
  // DOMContentLoaded: by then a page's own socket has claimed the stream. (Added later to a
  // finished page, as a test does, the script starts at once.)
  function start() { if (!claimed) connect(); }
  if (document.readyState === "complete") setTimeout(start, 0);
  else document.addEventListener("DOMContentLoaded", start);
})();
