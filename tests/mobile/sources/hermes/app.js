// A tiny stand-in for a React Native app's bundle: checkout() calls applyDiscount(),
// which throws. tests/mobile/artefacts.py compiles it with hermesc and finds the
// bytecode offsets of the throw and of the call from the compiler's own output.
'use strict';

function applyDiscount(cart, code) {
  if (code !== 'SAVE10') {
    throw new TypeError('unknown discount code: ' + code);
  }
  return cart.total * 0.9;
}

function checkout(cart) {
  var total = applyDiscount(cart, cart.code);
  return {total: total, items: cart.items.length};
}

function main() {
  var cart = {total: 40, code: 'BOGUS', items: [1, 2, 3]};
  return checkout(cart);
}

main();
