// The auction page, live: follows the auction over the WebSocket API (/ws/, spec §2)
// and places bids over it. Without this script the page still works through its forms.
// Text from users is only ever inserted with textContent.
(function () {
  "use strict";

  var snapshotEl = document.getElementById("auction-snapshot");
  var pageEl = document.getElementById("auction-page");
  if (!snapshotEl || !pageEl) return;

  var snapshot = JSON.parse(snapshotEl.textContent);
  var page = JSON.parse(pageEl.textContent);
  var $ = function (id) { return document.getElementById(id); };

  var state = {
    status: snapshot.status,
    endTime: Date.parse(snapshot.end_time),
    startTime: Date.parse(snapshot.start_time),
    highestBidderId: snapshot.highest_bidder ? snapshot.highest_bidder.id : null,
    bidCount: snapshot.bid_count,
    minNextBid: snapshot.min_next_bid,
    lastSeq: snapshot.seq,
    extended: false,
    myMax: page.my_max,  // the viewer's own maximum, known to them alone
  };
  // Server time minus browser time, in ms: first from the page, then from ping/pong.
  var clockOffset = Date.parse(page.server_now) - Date.now();
  var bestRoundTrip = Infinity;
  var socket = null;
  var reconnectDelay = 500;
  var pending = {};     // request_id -> true while a bid waits for its answer
  var pings = {};       // request_id -> send time (browser clock, ms)
  var counter = 0;
  var userTyped = false;

  function nextId(prefix) {
    counter += 1;
    return prefix + "-" + Date.now().toString(36) + "-" + counter;
  }

  function setText(id, text) {
    var el = $(id);
    if (el) el.textContent = text;
  }

  function rejectionText(code, data) {
    var text = page.rejections[code] || "Your bid was not accepted.";
    data = data || {};
    return text.replace("{min_next_bid}", data.min_next_bid || state.minNextBid)
               .replace("{current_price}", data.current_price || "");
  }

  function formatTime(ms) {
    return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
  }

  // --- Rendering ----------------------------------------------------------------

  var STATUS_NAMES = { pending: "Pending", active: "Active", ended: "Ended", cancelled: "Cancelled" };

  function renderStatus() {
    var badge = $("status");
    badge.textContent = STATUS_NAMES[state.status] || state.status;
    badge.className = "badge " + state.status;
    $("auction").setAttribute("data-status", state.status);
    var form = $("bid-form");
    if (form) form.hidden = state.status !== "active";
    if (state.status !== "active") hideOutbid();
  }

  function cents(text) { return Math.round(parseFloat(text) * 100); }

  function money(amountCents) {
    var whole = Math.floor(amountCents / 100), rest = amountCents % 100;
    return whole + "." + (rest < 10 ? "0" : "") + rest;
  }

  function renderPrice(currentPrice, minNextBid, bidCount) {
    setText("current-price", currentPrice);
    setText("min-next-bid", minNextBid);
    state.minNextBid = minNextBid;
    if (bidCount !== undefined) {
      state.bidCount = bidCount;
      setText("bid-count", String(bidCount));
      setText("bid-count-plural", bidCount === 1 ? "" : "s");
      setText("price-label", bidCount ? "Current bid" : "Starting price");
    }
    // After the first bid the increment is the step from the price to the next bid.
    if (state.bidCount) setText("increment", money(cents(minNextBid) - cents(currentPrice)));
    var input = $("bid-amount");
    // Keep the suggested amount current, unless the bidder typed their own: it is theirs.
    if (input && !userTyped) input.value = minNextBid;
  }

  function renderStanding(leading) {
    var el = $("my-standing");
    if (!el || !page.user_id) return;
    el.textContent = "";
    if (leading && state.myMax) {
      el.appendChild(document.createTextNode("You are leading with your max of "));
      var max = document.createElement("strong");
      max.id = "my-max";
      max.textContent = state.myMax;
      el.appendChild(max);
      el.appendChild(document.createTextNode("."));
    } else if (leading) {
      el.textContent = "You are the highest bidder.";
    } else {
      el.textContent = "You have been outbid" + (state.myMax ? " (your max was " + state.myMax + ")" : "") + ".";
    }
    el.hidden = false;
  }

  // Viewers (spec §8): connections following the auction now, on every server. Shown
  // only while this page is live: the count is presence, stale once the socket drops.
  function renderViewers(count) {
    var el = $("viewers");
    if (!el || typeof count !== "number") return;
    setText("viewers-count", String(count));
    el.setAttribute("data-count", String(count));
    el.hidden = false;
  }

  function hideViewers() {
    var el = $("viewers");
    if (el) el.hidden = true;
  }

  function hideBuyNow() {
    var buy = $("buy-form");
    if (buy) buy.hidden = true;
  }

  function addHistoryRow(bidId, amount, bidderName, auto, timestampSeconds) {
    var body = $("bid-history");
    if (body.querySelector('tr[data-bid-id="' + bidId + '"]')) return;
    var row = document.createElement("tr");
    row.setAttribute("data-bid-id", bidId);
    row.className = "fresh";
    var cells = [amount, bidderName, formatTime(timestampSeconds * 1000)];
    for (var i = 0; i < cells.length; i++) {
      var td = document.createElement("td");
      if (i === 0) td.className = "amount";
      if (i === 2) {
        var time = document.createElement("time");
        time.setAttribute("datetime", new Date(timestampSeconds * 1000).toISOString());
        time.textContent = cells[i];
        td.appendChild(time);
      } else td.textContent = cells[i];
      if (i === 1 && auto) {
        var tag = document.createElement("span");
        tag.className = "auto";
        tag.title = "Placed for the bidder's maximum";
        tag.textContent = "auto";
        td.appendChild(document.createTextNode(" "));
        td.appendChild(tag);
      }
      row.appendChild(td);
    }
    body.insertBefore(row, body.firstChild);
    if (window.localizeTimes) window.localizeTimes(row);
    $("no-bids").hidden = true;
  }

  function setEndTime(iso) {
    state.endTime = Date.parse(iso);
    setText("end-time", formatTime(state.endTime) + " UTC");
    $("end-time").setAttribute("datetime", iso);
    if (window.localizeTimes) window.localizeTimes($("end-time").parentNode);
  }

  function showWinner(winner, finalPrice, reserveMet) {
    var box = $("winner");
    box.textContent = "";
    if (winner) {
      box.appendChild(document.createTextNode("Won by "));
      var name = document.createElement("strong");
      name.id = "winner-name";
      name.textContent = winner.name;
      box.appendChild(name);
      box.appendChild(document.createTextNode(" for "));
      var price = document.createElement("strong");
      price.id = "final-price";
      price.textContent = finalPrice;
      box.appendChild(price);
      box.appendChild(document.createTextNode("."));
      setText("price-label", "Sold for");
    } else {
      box.textContent = "Ended without a winner" +
        (state.bidCount && !reserveMet ? " (the reserve was not met)" : "") + ".";
    }
    box.hidden = false;
  }

  function showOutbid() {
    var notice = $("outbid-notice");
    notice.hidden = false;
    notice.textContent = "You have been outbid! The next bid must be at least " + state.minNextBid + ".";
  }

  function hideOutbid() { $("outbid-notice").hidden = true; }

  function feedback(text, kind) {
    var el = $("bid-feedback");
    if (!el) return;
    el.textContent = text;
    el.className = "bid-feedback" + (kind ? " " + kind : "");
  }

  // --- Countdown (server time) ----------------------------------------------------

  function serverNow() { return Date.now() + clockOffset; }

  function duration(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
    var m = Math.floor(s % 3600 / 60), sec = s % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (d) return d + "d " + h + "h " + pad(m) + "m";
    if (h) return h + "h " + pad(m) + "m " + pad(sec) + "s";
    return m + "m " + pad(sec) + "s";
  }

  function tick() {
    var el = $("countdown");
    var text, cls = "countdown";
    if (state.status === "ended") { text = "Ended"; cls += " over"; }
    else if (state.status === "cancelled") { text = "Cancelled"; cls += " over"; }
    else if (state.status === "pending") { text = "Starts in " + duration(state.startTime - serverNow()); }
    else {
      var left = state.endTime - serverNow();
      // Only the auction_ended event says it is over; until then the server is closing it.
      if (left <= 0) { text = "0m 00s · closing…"; cls += " soon"; }
      else {
        text = "Ends in " + duration(left) + (state.extended ? " · extended" : "");
        if (left < 60000) cls += " soon";
      }
    }
    el.textContent = text;
    el.className = cls;
    el.setAttribute("data-remaining-ms", String(Math.max(0, Math.round(state.endTime - serverNow()))));
  }

  // --- Events ---------------------------------------------------------------------

  function applyEvent(msg) {
    if (msg.seq <= state.lastSeq) return;  // already applied (replay after reconnect)
    state.lastSeq = msg.seq;
    var d = msg.data;
    if (msg.type === "bid_placed") {
      var previous = state.highestBidderId;
      // The leader after the decision: an automatic bid can keep someone else ahead.
      var leader = d.highest_bidder || d.bidder;
      state.highestBidderId = leader.id;
      renderPrice(d.current_price, d.min_next_bid, d.bid_count);
      setText("highest-bidder", leader.name);
      setEndTime(d.end_time);
      addHistoryRow(d.bid_id, d.amount, d.bidder.name, d.auto, msg.timestamp);
      hideBuyNow();
      if (page.user_id && previous === page.user_id && leader.id !== page.user_id) {
        showOutbid();
        renderStanding(false);
        feedback("", "");
      } else if (page.user_id && leader.id === page.user_id) {
        hideOutbid();
        renderStanding(true);
      } else if (!$("outbid-notice").hidden) {
        showOutbid();  // the minimum next bid it names moves on with every bid
      }
      var price = $("current-price");
      price.classList.add("bumped");
      setTimeout(function () { price.classList.remove("bumped"); }, 1200);
    } else if (msg.type === "auction_extended") {
      setEndTime(d.end_time);
      state.extended = true;
      $("extended").hidden = false;
    } else if (msg.type === "auction_started") {
      state.status = d.status;
      setEndTime(d.end_time);
      renderPrice(d.current_price, d.min_next_bid);
      renderStatus();
    } else if (msg.type === "auction_ended") {
      state.status = d.status;
      renderStatus();
      showWinner(d.winner, d.final_price, d.reserve_met);
    } else if (msg.type === "auction_cancelled") {
      state.status = d.status;
      renderStatus();
      var box = $("winner");
      box.textContent = "Cancelled" + (d.reason ? ": " + d.reason : "") + ".";
      box.hidden = false;
    }
    tick();
  }

  function applySnapshot(s) {
    if (!s.buy_now_price) hideBuyNow();
    state.status = s.status;
    state.startTime = Date.parse(s.start_time);
    state.highestBidderId = s.highest_bidder ? s.highest_bidder.id : null;
    setEndTime(s.end_time);
    renderPrice(s.current_price, s.min_next_bid, s.bid_count);
    setText("highest-bidder", s.highest_bidder ? s.highest_bidder.name : "—");
    renderStatus();
    if (s.status === "ended") showWinner(s.winner, s.current_price, s.reserve_met);
    tick();
  }

  // --- The socket -----------------------------------------------------------------

  function send(message) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  function ping() {
    var id = nextId("ping");
    pings[id] = Date.now();
    send({ type: "ping", request_id: id });
  }

  function onPong(msg) {
    var sent = pings[msg.request_id];
    delete pings[msg.request_id];
    if (sent === undefined) return;
    var received = Date.now();
    var roundTrip = received - sent;
    // The reply left the server about half a round trip ago; the fastest round trip
    // gives the best estimate.
    if (roundTrip <= bestRoundTrip) {
      bestRoundTrip = roundTrip;
      clockOffset = msg.timestamp * 1000 - (sent + roundTrip / 2);
    }
  }

  // This page's socket carries the user's notifications as well: one socket per page.
  var notices = window.siteNotifications ? window.siteNotifications.claim() : null;

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/");
    socket.onopen = function () {
      reconnectDelay = 500;
      $("live").hidden = false;
      // since_seq: everything after what this page shows (the first time, what the
      // server drew) comes before any live event, so nothing falls in between.
      send({ type: "subscribe", auction_id: page.auction_id, since_seq: state.lastSeq });
      // The user's notifications come on this socket too (notifications.js shows them).
      if (notices) send(notices.resumeMessage());
      ping();
      setTimeout(ping, 1000);
      setTimeout(ping, 3000);
    };
    socket.onmessage = function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (msg.type === "notification") { if (notices) notices.take(msg); return; }
      if (msg.auction_id && msg.auction_id !== page.auction_id) return;
      switch (msg.type) {
        case "pong": onPong(msg); break;
        case "subscribed": applySubscribed(msg.data); break;
        case "viewers": renderViewers(msg.count); break;
        case "bid_accepted": onBidAnswer(msg, true); break;
        case "bid_rejected": onBidAnswer(msg, false); break;
        case "error": if (msg.request_id && pending[msg.request_id]) onBidAnswer(msg, false); break;
        default: if (typeof msg.seq === "number") applyEvent(msg);
      }
    };
    socket.onclose = function (event) {
      $("live").hidden = true;
      hideViewers();
      failPendingBids();
      if (event.code === 4401) return;  // not logged in (any more): no live updates
      setTimeout(connect, reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, 10000);
    };
  }

  function applySubscribed(data) {
    renderViewers(data.viewers);
    // The snapshot is newer than the events a resume replays next; take its state only
    // when there is nothing to replay, so the history rows come from the events.
    if (data.seq <= state.lastSeq) {
      applySnapshot(data);
      state.lastSeq = data.seq;
    }
  }

  // --- Bidding --------------------------------------------------------------------

  var form = $("bid-form");
  var button = $("bid-button");
  var buttonLabel = button ? button.textContent : "";
  var buttonTimer = null;

  function buttonState(text, cls, disabled) {
    clearTimeout(buttonTimer);
    button.textContent = text;
    button.className = "button primary" + (cls ? " " + cls : "");
    button.disabled = disabled;
    button.setAttribute("data-state", cls || "idle");
  }

  function onBidAnswer(msg, accepted) {
    if (!pending[msg.request_id]) return;
    delete pending[msg.request_id];
    if (accepted) {
      var d = msg.data;
      state.myMax = d.max_amount;
      buttonState("Accepted ✓", "accepted", false);
      if (d.bought) feedback("You bought it for " + d.amount + ".", "good");
      else if (!d.leading) {
        feedback("Your bid of " + d.amount + " was placed, but another bidder's maximum is higher: the price is now " + d.current_price + ".", "bad");
      } else if (d.max_amount !== d.amount) {
        feedback("You are the highest bidder at " + d.current_price + "; we will bid for you up to " + d.max_amount + ".", "good");
      } else feedback("Your bid of " + d.amount + " is the highest bid.", "good");
      if (d.leading) hideOutbid();
      renderStanding(d.leading);
      var maxInput = $("bid-max");
      if (maxInput) maxInput.value = "";
    } else {
      buttonState("Rejected", "rejected", false);
      feedback(msg.code ? rejectionText(msg.code, msg.data) : (msg.message || "Your bid was not accepted."), "bad");
      if (msg.data && msg.data.min_next_bid) renderPrice(msg.data.current_price, msg.data.min_next_bid);
    }
    buttonTimer = setTimeout(function () { buttonState(buttonLabel, "", false); }, 2500);
  }

  function failPendingBids() {
    for (var id in pending) {
      if (Object.prototype.hasOwnProperty.call(pending, id)) {
        delete pending[id];
        buttonState(buttonLabel, "", false);
        feedback("The connection dropped; check the history, then try again.", "bad");
      }
    }
  }

  if (form && button && page.user_id) {
    $("bid-amount").addEventListener("input", function () { userTyped = true; });
    form.addEventListener("submit", function (event) {
      if (!socket || socket.readyState !== WebSocket.OPEN) return;  // the form posts instead
      event.preventDefault();
      if (button.disabled) return;
      var amount = $("bid-amount").value.trim();
      var max = $("bid-max") ? $("bid-max").value.trim() : "";
      var id = nextId("bid");
      pending[id] = true;
      buttonState("Placing bid…", "pending", true);
      feedback("", "");
      userTyped = false;
      var message = { type: "place_bid", auction_id: page.auction_id, request_id: id };
      // With a maximum, an empty amount bids the minimum next bid.
      if (amount || !max) message.amount = amount;
      if (max) message.max_amount = max;
      send(message);
    });
  }

  var buyForm = $("buy-form");
  if (buyForm && page.user_id) {
    buyForm.addEventListener("submit", function (event) {
      if (!socket || socket.readyState !== WebSocket.OPEN) return;  // the form posts instead
      event.preventDefault();
      var id = nextId("buy");
      pending[id] = true;
      buttonState("Buying…", "pending", true);
      send({ type: "buy_now", auction_id: page.auction_id, request_id: id });
    });
  }

  renderStatus();
  tick();
  setInterval(tick, 250);
  if (page.user_id) {
    connect();
    setInterval(ping, 30000);  // keeps the offset fresh and the connection alive
  }
})();
