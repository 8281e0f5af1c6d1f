# A real ActionCable server (Rails' own code, from Debian's ruby-actioncable) with a RoomChannel that
# behaves like Chatwoot's: per-token and per-account streams, update_presence answered to the caller's
# token stream, and a lookup that raises for a bad token or ids (so: no confirm, no reject).
# Run: puma -b tcp://127.0.0.1:PORT config.ru   Control: POST /control/broadcast, /control/restart.
require "action_cable"
require "json"
require "logger"

USERS = { "good-user-token" => { id: 1, accounts: [1] } }.freeze
CONTACTS = { "good-contact-token" => { id: 7, account: 1 } }.freeze

class RecordNotFound < StandardError; end

module ApplicationCable
  class Connection < ActionCable::Connection::Base
    def connect
      reject_unauthorized_connection if request.params["reject"] == "1"
    end
  end

  class Channel < ActionCable::Channel::Base; end
end

class RoomChannel < ApplicationCable::Channel
  def subscribed
    owner = lookup! # Chatwoot looks up first; RecordNotFound leaves the subscription silent
    stream_from params[:pubsub_token]
    stream_from "account_#{owner[:account]}" if owner[:kind] == :user
  end

  def update_presence
    owner = lookup!
    data = { account_id: owner[:account], users: { "1" => "online" } }
    data[:contacts] = { "7" => "online" } if owner[:kind] == :user
    ActionCable.server.broadcast(params[:pubsub_token], { event: "presence.update", data: data })
  end

  private

  def lookup!
    token = params[:pubsub_token]
    if (user = USERS[token])
      ok = params[:user_id].to_i == user[:id] && user[:accounts].include?(params[:account_id].to_i)
      raise RecordNotFound, "Couldn't find User" unless ok
      { kind: :user, account: params[:account_id].to_i }
    elsif (contact = CONTACTS[token]) && params[:user_id].to_s.empty?
      { kind: :contact, account: contact[:account] }
    else
      raise RecordNotFound, "Couldn't find ContactInbox"
    end
  end
end

ActionCable.server.config.cable = { "adapter" => "async" }
ActionCable.server.config.logger = Logger.new($stderr, level: Logger::INFO)
ActionCable.server.config.connection_class = -> { ApplicationCable::Connection }
ActionCable.server.config.worker_pool_size = 4

control = lambda do |env|
  request = Rack::Request.new(env)
  case request.path_info
  when "/broadcast"
    body = JSON.parse(request.body.read)
    body.fetch("count", 1).times { ActionCable.server.broadcast(body["stream"], body["message"]) }
  when "/restart"
    ActionCable.server.restart
  when "/health"
    nil
  else
    next [404, { "Content-Type" => "text/plain" }, ["no such control"]]
  end
  [200, { "Content-Type" => "application/json" }, ["{}"]]
end

map("/cable") { run ActionCable.server }
map("/control") { run control }
